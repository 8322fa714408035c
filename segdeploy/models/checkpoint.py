"""Self-describing checkpoints: save, safe load, and ``load_model`` from file or preset.

A checkpoint is a plain dict ``{"format", "meta", "state_dict", ...}`` of str, numbers,
lists and tensors, so ``torch.load(weights_only=True)`` reads it and refuses anything
that would execute code. Training adds its own plain keys (optimizer state, epoch).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segdeploy.artifact_meta import checkpoint_meta, checkpoint_payload, read_checkpoint
from segdeploy.errors import BadInputError, library_reason, printable
from segdeploy.fileio import atomic_output, sha256_file
from segdeploy.metadata import ArtifactMeta, new_meta
from segdeploy.models.registry import create_model, model_config

MAX_KEYS_SHOWN = 5


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike, meta: ArtifactMeta, **extra: Any
) -> Path:
    """Write model weights and ``meta`` atomically; ``extra`` plain values are stored beside."""
    payload = checkpoint_payload(meta, {key: value.detach().cpu() for key, value in model.state_dict().items()},
                                 **extra)
    path = Path(path)
    with atomic_output(path) as tmp:
        torch.save(payload, tmp)
    return path


def is_state_dict(payload: dict[str, Any]) -> bool:
    """A non-empty dict of parameter names (str) to tensors."""
    return bool(payload) and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in payload.items())


def load_model(
    source: str | os.PathLike,
    *,
    arch: str | None = None,
    num_classes: int | None = None,
    **overrides: Any,
) -> tuple[nn.Module, ArtifactMeta]:
    """Return ``(model in eval mode, metadata)`` from a checkpoint path or a preset name.

    - segdeploy checkpoint: architecture and metadata come from the file.
    - plain state dict: ``arch`` and ``num_classes`` are required.
    - preset name (no such file): a randomly initialised model, like Ultralytics from a yaml.
    ``overrides`` are constructor options (e.g. ``base_channels``) for presets and state dicts.
    """
    if num_classes is not None and num_classes < 1:
        raise BadInputError(f"--num-classes must be >= 1, got {num_classes}")
    path = Path(source)
    if not path.exists():
        if os.sep in str(source) or path.suffix in {".pt", ".pth", ".ckpt"}:
            raise BadInputError(f"checkpoint not found: {path}")
        return _preset_model(str(source), num_classes, overrides)
    payload = read_checkpoint(path)
    meta = checkpoint_meta(payload, path)
    if meta is not None:
        if arch is not None and arch != meta.arch:
            raise BadInputError(f"{path} holds a {meta.arch}, not {arch}; drop --arch")
        if num_classes is not None and num_classes != meta.num_classes:
            raise BadInputError(f"{path} has {meta.num_classes} classes, not {num_classes}")
        state = payload.get("state_dict")
        model = build_from_metadata(meta.arch, {**meta.config, **overrides}, path)
    elif is_state_dict(payload):
        if arch is None or num_classes is None:
            raise BadInputError(
                f"{path} is a plain state dict without metadata; pass --arch and --num-classes"
            )
        model, meta = _preset_model(arch, num_classes, overrides)
        meta = meta.replace(source={"path": str(path), "sha256": sha256_file(path)})
        state = payload
    else:
        raise BadInputError(f"{path} is not a segdeploy checkpoint or a state dict")
    load_state_checked(model, state, meta.arch, path)
    return model.eval(), meta


def build_from_metadata(arch: str, config: dict[str, Any], path: Path) -> nn.Module:
    """The model a checkpoint's (untrusted) metadata names. The registry checks each option's type against the
    preset's; a constructor's own refusal of a value (TypeError, ValueError) is bad input, not a bug."""
    try:
        return create_model(arch, **config)
    except BadInputError as exc:
        raise BadInputError(f"{path}: {exc}") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise BadInputError(f"{path}: its metadata's model config does not build a {arch}: "
                            f"{library_reason(exc, 100)}") from exc


def _preset_model(
    name: str, num_classes: int | None, overrides: dict[str, Any]
) -> tuple[nn.Module, ArtifactMeta]:
    if num_classes is not None:
        overrides = {**overrides, "num_classes": num_classes}
    config = model_config(name, **overrides)
    model = create_model(name, **config)
    meta = new_meta(name, config, int(config["num_classes"]))
    meta = meta.replace(preprocess=dataclasses.replace(meta.preprocess, divisor=model.size_divisor))
    return model.eval(), meta


def load_state_checked(model: nn.Module, state: Any, arch: str, path: Path) -> None:
    """Load ``state`` strictly; on mismatch raise one line naming the offending keys."""
    check_state_fits(model, state, arch, path)
    model.load_state_dict(state, strict=True)


def check_state_fits(model: nn.Module, state: Any, arch: str, path: Path) -> None:
    """BadInputError naming the missing, unexpected, misshapen and wrongly typed keys unless ``state`` fits
    ``model`` exactly (``model`` may live on the meta device)."""
    if not isinstance(state, dict) or not is_state_dict(state):
        raise BadInputError(f"{path} has no usable state_dict")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
        for key in set(expected) & set(state)
        if state[key].shape != expected[key].shape
    )
    # load_state_dict would cast silently (complex to real with only a warning, floats to int buffers)
    wrong_kind = sorted(f"{key} {state[key].dtype} vs {expected[key].dtype}" for key in set(expected) & set(state)
                        if _kind(state[key].dtype) != _kind(expected[key].dtype))
    problems = [
        f"{label} {len(keys)} ({_shorten(keys)})"
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("shape mismatch", wrong_shape), ("dtype mismatch", wrong_kind))
        if keys
    ]
    if problems:
        raise BadInputError(f"state dict in {path} does not fit {arch}: " + "; ".join(problems))


def _kind(dtype: torch.dtype) -> str:
    return "complex" if dtype.is_complex else "float" if dtype.is_floating_point else "bool" if dtype == torch.bool \
        else "int"


def _shorten(keys: list[str]) -> str:
    """The first few names (made printable: they come from the file), and how many more."""
    shown = ", ".join(printable(key) for key in keys[:MAX_KEYS_SHOWN])
    return shown + (f", ... {len(keys) - MAX_KEYS_SHOWN} more" if len(keys) > MAX_KEYS_SHOWN else "")
