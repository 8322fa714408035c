"""Metadata of an artifact file, one function per format each way (torch-free until a checkpoint is read).

| format | suffixes | where the metadata lives |
| --- | --- | --- |
| checkpoint | .pt .pth | the ``meta`` entry of the checkpoint dict (``torch.load(weights_only=True)``) |
| onnx | .onnx | ``metadata_props["segdeploy"]`` (JSON) |
| openvino | .xml (+ .bin) | ``rt_info`` at ``segdeploy/meta`` |
| engine | .engine .trt .plan | the sidecar manifest ``<engine>.json`` (``segdeploy.engine_manifest``) |
"""

from __future__ import annotations

import os
import re
import zipfile
from enum import StrEnum
from pathlib import Path
from typing import Any

import onnx

from segdeploy.errors import BadInputError, library_reason, printable, require, shorten
from segdeploy.fileio import require_file, sha256_file
from segdeploy.ir_file import check_ir_pair, openvino_reason
from segdeploy.metadata import ONNX_METADATA_KEY, ArtifactMeta
from segdeploy.onnx_graph import load_onnx
from segdeploy.reading import captured_warnings
from segdeploy.sniff import describe, head, pickle_globals, runs_code, unsafe_global

CHECKPOINT_FORMAT = "segdeploy.checkpoint"
OPENVINO_META_PATH = ["segdeploy", "meta"]


class ArtifactFormat(StrEnum):
    CHECKPOINT = "checkpoint"
    ONNX = "onnx"
    OPENVINO = "openvino"
    ENGINE = "engine"


FORMAT_OF_SUFFIX = {".pt": ArtifactFormat.CHECKPOINT, ".pth": ArtifactFormat.CHECKPOINT,
                    ".onnx": ArtifactFormat.ONNX, ".xml": ArtifactFormat.OPENVINO,
                    ".engine": ArtifactFormat.ENGINE, ".trt": ArtifactFormat.ENGINE, ".plan": ArtifactFormat.ENGINE}


def artifact_format(path: str | os.PathLike) -> ArtifactFormat:
    """The format of ``path`` by its suffix; an unknown suffix is BadInputError."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMAT_OF_SUFFIX:
        raise BadInputError(f"{path}: unknown artifact type {suffix or '(no suffix)'!r}; expected one of "
                            f"{', '.join(sorted(FORMAT_OF_SUFFIX))}")
    return FORMAT_OF_SUFFIX[suffix]


def read_artifact_meta(path: str | os.PathLike) -> ArtifactMeta:
    """The segdeploy metadata carried by the artifact at ``path``, whatever its format."""
    path = require_file(path, "artifact")
    readers = {ArtifactFormat.CHECKPOINT: read_checkpoint_meta, ArtifactFormat.ONNX: read_onnx_meta,
               ArtifactFormat.OPENVINO: read_openvino_meta, ArtifactFormat.ENGINE: read_engine_meta}
    return readers[artifact_format(path)](path)


# -- checkpoint ----------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``); any refusal is one BadInputError line.

    The file is untrusted: whatever torch's unpickler raises on it (IndexError, KeyError,
    UnicodeDecodeError ... as well as UnpicklingError) is the file's fault, reported as what the
    file looks like and why safe loading refused it; torch's warnings are logged, not printed.
    """
    import torch

    path = require_file(path, "checkpoint")
    looks = describe(path)
    if looks not in ("a PyTorch checkpoint archive", "a pickle"):
        raise BadInputError(f"{path} is {looks}{_hint_for(looks)}")
    if looks == "a PyTorch checkpoint archive":
        _check_archive(path)
    try:
        with captured_warnings(str(path)):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # the unpickler's failures on a malformed file come in many types
        raise BadInputError(_refusal(path, looks, exc)) from exc
    if not isinstance(payload, dict):
        raise BadInputError(f"{path} holds a {type(payload).__name__}, not a checkpoint dict; save a dict such as "
                            "model.state_dict()")
    return payload


def _check_archive(path: Path) -> None:
    """Every member of the checkpoint's zip must match its CRC-32: torch's reader does not check them, so a
    flipped byte in a tensor would load as silently different weights."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError) as exc:
        # RuntimeError: a member flagged as encrypted (zipfile wants a password)
        reason = "it ends too early" if isinstance(exc, EOFError) else library_reason(exc)
        raise BadInputError(f"{path} is a damaged PyTorch checkpoint (its zip structure is broken: {reason})") from exc
    if damaged is not None:
        # torch names the archive's root folder after the file it wrote: show the member's own name
        member = shorten(printable(damaged.split("/", 1)[-1]), 60)
        raise BadInputError(f"{path} is a damaged PyTorch checkpoint: {member} fails its CRC-32 check (the file "
                            "was corrupted after it was written; copy or download it again)")


def _hint_for(looks: str) -> str:
    if looks == "an ONNX model":
        return ", not a PyTorch checkpoint: pass it where an .onnx file is expected (named *.onnx)"
    if looks == "a damaged zip archive":
        return " (truncated or corrupt): if it was a PyTorch checkpoint, copy or save it again"
    if looks == "a safetensors file":
        return ", not a PyTorch checkpoint: convert it to a state dict with safetensors.torch.load_file and torch.save"
    return ", not a PyTorch checkpoint"


def _refusal(path: Path, looks: str, exc: Exception) -> str:
    """The one-line reason safe loading refused ``path``: a full pickled model, code, or damage."""
    message = str(exc)
    name = unsafe_global(message)
    if looks == "a pickle":  # torch stops at the first opcode it refuses; a static scan sees every name
        name = next((found for found in pickle_globals(path) if runs_code(found)), name)
    if name and runs_code(name):
        return (f"{path} refers to code ({name}) that loading would run; safe loading refused it: do not load "
                "files from sources you do not trust")
    if name:
        return (f"{path} is a full pickled model or object (it refers to {name}), which is not accepted: save "
                "model.state_dict() or use segdeploy's checkpoint format ('segdeploy export' or 'segdeploy train')")
    # torch wraps the unpickler's reason in paragraphs of advice; keep the reason ("Unsupported operand 255")
    protocol = head(path, 2)[1]
    if looks == "a pickle" and protocol >= 4:
        return (f"{path} is a Python pickle (protocol {protocol}), not a PyTorch checkpoint: torch.save writes "
                "checkpoints; save a state dict with it")
    detail = re.search(r"WeightsUnpickler error:\s*(.+)", message)
    reason = library_reason(detail.group(1) if detail else exc)
    kind = "PyTorch checkpoint" if looks == "a PyTorch checkpoint archive" else "pickle"
    failure = type(exc).__name__ if reason == type(exc).__name__ else f"{type(exc).__name__}: {reason}"
    return f"{path} is a damaged {kind} (truncated or corrupt; safe loading failed with {failure})"


def checkpoint_meta(payload: dict[str, Any], path: str | os.PathLike) -> ArtifactMeta | None:
    """The metadata of a loaded checkpoint dict, with its source recorded; None for a plain state dict."""
    if payload.get("format") != CHECKPOINT_FORMAT:
        return None
    return ArtifactMeta.from_dict(payload.get("meta")).replace(source={"path": str(path),
                                                                       "sha256": sha256_file(path)})


def read_checkpoint_meta(path: str | os.PathLike) -> ArtifactMeta:
    meta = checkpoint_meta(read_checkpoint(path), path)
    if meta is None:
        raise BadInputError(f"{path} is not a segdeploy checkpoint (a plain state dict has no metadata); make "
                            "one with 'segdeploy export' or 'segdeploy train', or pass --arch and --num-classes "
                            "to 'segdeploy export'")
    return meta


def checkpoint_payload(meta: ArtifactMeta, state_dict: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The checkpoint dict that carries ``meta`` (what ``torch.save`` writes)."""
    return {"format": CHECKPOINT_FORMAT, "meta": meta.to_dict(), "state_dict": state_dict, **extra}


# -- ONNX ----------------------------------------------------------------------------------
def attach_metadata(model: onnx.ModelProto, meta: ArtifactMeta) -> onnx.ModelProto:
    """Set (replace) the segdeploy entry in ``model.metadata_props``; returns ``model``."""
    kept = [prop for prop in model.metadata_props if prop.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=ONNX_METADATA_KEY, value=meta.to_json())
    return model


def read_metadata(model: onnx.ModelProto, origin: str = "model") -> ArtifactMeta:
    """The segdeploy metadata of a loaded ONNX ``model``; BadInputError if absent or invalid."""
    try:
        text = next((prop.value for prop in model.metadata_props if prop.key == ONNX_METADATA_KEY), None)
    except UnicodeDecodeError as exc:  # protobuf decodes string fields lazily: a damaged file fails here
        raise BadInputError(f"{origin} is a damaged ONNX model: its metadata is not UTF-8 text") from exc
    if text is not None:
        return _meta_from_text(text, origin)
    raise BadInputError(
        f"{origin} has no segdeploy metadata; export it with 'segdeploy export' "
        "or pass the preprocessing options (--input-size, --mean, --std) explicitly"
    )


def read_onnx_meta(path: str | os.PathLike) -> ArtifactMeta:
    return read_metadata(load_onnx(path, load_weights=False), str(path))


# -- OpenVINO IR ---------------------------------------------------------------------------
def attach_openvino_metadata(model: Any, meta: ArtifactMeta) -> Any:
    """Set the segdeploy metadata in an ``openvino.Model``'s ``rt_info``; returns ``model``."""
    model.set_rt_info(meta.to_json(), OPENVINO_META_PATH)
    return model


def read_openvino_meta(path: str | os.PathLike) -> ArtifactMeta:
    ov = require("openvino", "openvino")
    check_ir_pair(path)
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
        raise BadInputError(f"{path} is a damaged OpenVINO IR: {openvino_reason(exc)}") from exc
    if not model.has_rt_info(OPENVINO_META_PATH):
        raise BadInputError(f"{path} has no segdeploy metadata; convert it with 'segdeploy export MODEL.onnx "
                            "--format openvino'")
    try:
        text = model.get_rt_info(OPENVINO_META_PATH).astype(str)
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is a damaged OpenVINO IR: its segdeploy metadata is not UTF-8 text") from exc
    return _meta_from_text(text, str(path))


def _meta_from_text(text: str, origin: str) -> ArtifactMeta:
    """The metadata JSON an artifact carries; its refusal names the artifact."""
    try:
        return ArtifactMeta.from_json(text)
    except BadInputError as exc:
        raise BadInputError(f"{origin}: {exc}") from exc


# -- TensorRT engine -----------------------------------------------------------------------
def read_engine_meta(path: str | os.PathLike) -> ArtifactMeta:
    """The metadata in the engine's sidecar manifest (written by ``segdeploy build``)."""
    from segdeploy.engine_manifest import read_manifest

    return read_manifest(path).artifact_meta()
