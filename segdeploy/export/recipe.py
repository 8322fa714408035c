"""Export recipes: small TOML files (under the top-level ``export/`` folder) of defaults.

A recipe names the source preset or checkpoint, the class count and ExportConfig fields;
command-line options override it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

from segdeploy.errors import BadInputError, printable
from segdeploy.export.config import ExportConfig
from segdeploy.reading import field, load_toml
from segdeploy.sizes import parse_hw

_CONFIG_FIELDS = {f.name for f in fields(ExportConfig)}
_RECIPE_KEYS = {"source", "num_classes", "description"} | _CONFIG_FIELDS


@dataclass(frozen=True)
class ExportRecipe:
    source: str | None
    num_classes: int | None
    config: ExportConfig


def load_recipe(path: str | os.PathLike) -> ExportRecipe:
    """Parse a recipe file; unknown keys are an error (typos must not pass silently)."""
    data = load_toml(path, "export recipe")
    unknown = sorted(set(data) - _RECIPE_KEYS)
    if unknown:
        raise BadInputError(f"{path}: unknown recipe key(s) {', '.join(printable(key) for key in unknown)}")
    for key, kinds in _KINDS.items():
        if key in data:
            field(data, key, kinds, str(path))
    values = {key: data[key] for key in _CONFIG_FIELDS & set(data)}
    try:
        if "input_size" in values:
            values["input_size"] = parse_hw(values["input_size"])
        config = ExportConfig(**values)
    except BadInputError as exc:  # the config names the CLI option; say the value came from this file
        raise BadInputError(f"{path}: {exc}") from exc
    return ExportRecipe(data.get("source"), data.get("num_classes"), config)


def merge_options(base: ExportConfig, **given: Any) -> ExportConfig:
    """``base`` with every option that was actually given (not None) applied."""
    return base.replace(**{key: value for key, value in given.items() if value is not None})


# What each key holds in TOML (a float field takes an integer too; a bool is never a number).
_KINDS: dict[str, type | tuple[type, ...]] = {
    "source": str, "num_classes": int, "description": str, "input_size": str, "input_layout": str,
    **{f.name: (int, float) if f.type == "float" else {"int": int, "bool": bool}.get(f.type, str)
       for f in fields(ExportConfig) if f.name not in ("input_size", "input_layout")},
}
