"""A small model registry in timm's pattern: presets registered by their family file.

``create_model(name, **overrides)`` builds a preset; ``list_models()`` lists them. A
preset is a family class plus default constructor arguments; the full argument dict is
what checkpoints store as ``config`` so the model can be rebuilt exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from segdeploy.errors import BadInputError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    builder: Any  # the nn.Module class of the family
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    test_only: bool = False


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(entry: ModelEntry) -> ModelEntry:
    """Add a preset; names are unique."""
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} registered twice")
    _REGISTRY[entry.name] = entry
    return entry


def _ensure_families_loaded() -> None:
    # Importing the family modules registers their presets.
    from segdeploy.models import swin_seg, unet  # noqa: F401


def list_models(include_test: bool = False) -> list[str]:
    """Names of the registered presets (tiny test variants only when asked)."""
    _ensure_families_loaded()
    return sorted(name for name, entry in _REGISTRY.items() if include_test or not entry.test_only)


def get_entry(name: str) -> ModelEntry:
    _ensure_families_loaded()
    entry = _REGISTRY.get(name)
    if entry is None:
        known = ", ".join(list_models(include_test=True))
        raise BadInputError(f"unknown architecture {name!r}; known: {known}")
    return entry


def model_config(name: str, **overrides: Any) -> dict[str, Any]:
    """The full constructor arguments of preset ``name`` with ``overrides`` applied."""
    entry = get_entry(name)
    unknown = sorted(set(overrides) - set(entry.defaults))
    if unknown:
        raise BadInputError(
            f"{name} has no option(s) {', '.join(map(str, unknown))}; options: {', '.join(sorted(entry.defaults))}"
        )
    for option, value in overrides.items():
        _check_option(name, option, value, entry.defaults[option])
    return {**entry.defaults, **overrides}


def _check_option(name: str, option: str, value: Any, default: Any) -> None:
    """``value`` has the preset default's kind (bool, int, float, str, or a sequence of the same kind); options
    come from checkpoints' metadata too, which is untrusted."""
    if default is None or value is None:
        return
    kind = _kind(default)
    if _kind(value) != kind and not (kind == "float" and _kind(value) == "int"):
        raise BadInputError(f"{name} option {option} must be {kind}, not {type(value).__name__}")
    if isinstance(default, list | tuple):
        inner = {_kind(item) for item in default}
        if len(inner) == 1 and any(_kind(item) not in inner for item in value):
            raise BadInputError(f"{name} option {option} must hold {inner.pop()} values")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list | tuple):
        return "sequence"
    return type(value).__name__


def create_model(name: str, **overrides: Any):
    """Build preset ``name`` (an ``nn.Module``, random weights, eval mode off)."""
    entry = get_entry(name)
    config = model_config(name, **overrides)
    if int(config.get("num_classes", 1)) < 1:
        raise BadInputError(f"num_classes must be >= 1, got {config['num_classes']}")
    return entry.builder(**config)
