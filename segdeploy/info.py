"""What ``segdeploy info`` reports: artifacts, presets and the environment."""

from __future__ import annotations

import importlib
import importlib.metadata
import math
import os
import platform
from pathlib import Path
from typing import Any

from segdeploy import __version__
from segdeploy.errors import BadInputError
from segdeploy.fileio import sha256_file

REPORT_SIZE = (360, 480)  # parameter/GFLOP figures are quoted at CamVid's size
_ONNX_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}


def describe_artifact(source: str | os.PathLike, input_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Metadata, I/O, size and hash of an artifact file, or the profile of a preset name."""
    path = Path(source)
    if not path.exists():
        if path.suffix:
            raise BadInputError(f"artifact not found: {path}")
        return _describe_model(str(source), input_size)
    if path.suffix == ".onnx":
        return _describe_onnx(path)
    if path.suffix == ".xml":
        return _describe_openvino(path)
    if path.suffix in {".pt", ".pth", ".ckpt"}:
        return _describe_model(str(path), input_size)
    raise BadInputError(f"unknown artifact type {path.suffix!r}: expected .pt, .onnx or an OpenVINO .xml")


def _describe_onnx(path: Path) -> dict[str, Any]:
    from segdeploy.artifact_meta import read_metadata
    from segdeploy.onnx_graph import load_onnx, opset_of

    model = load_onnx(path)
    meta = read_metadata(model, str(path))
    initializers = {init.name for init in model.graph.initializer}
    params = sum(math.prod(init.dims) for init in model.graph.initializer)
    return {
        "kind": "onnx",
        "path": str(path),
        "size_bytes": path.stat().st_size,
        "sha256": sha256_file(path),
        "opset": opset_of(model),
        "precision": meta.precision.value,
        "params": params,
        "inputs": [_tensor(v) for v in model.graph.input if v.name not in initializers],
        "outputs": [_tensor(v) for v in model.graph.output],
        "meta": meta.to_dict(),
    }


def _describe_openvino(path: Path) -> dict[str, Any]:
    """An OpenVINO IR: its metadata (BadInputError without it), ports and files (.xml + .bin)."""
    from segdeploy.artifact_meta import read_openvino_meta
    from segdeploy.errors import require

    meta = read_openvino_meta(path)
    model = require("openvino", "openvino").Core().read_model(str(path))
    files = [file for file in (path, path.with_suffix(".bin")) if file.exists()]
    return {
        "kind": "openvino",
        "path": str(path),
        "size_bytes": sum(file.stat().st_size for file in files),
        "sha256": sha256_file(path),  # of the .xml; the .bin is named in it
        "precision": meta.precision.value,
        "inputs": [_port(port) for port in model.inputs],
        "outputs": [_port(port) for port in model.outputs],
        "meta": meta.to_dict(),
    }


def _port(port) -> dict[str, Any]:
    shape = port.get_partial_shape()
    dims = ["?"] if shape.rank.is_dynamic else [dim.get_length() if dim.is_static else "?" for dim in shape]
    return {"name": port.get_any_name(), "shape": dims, "dtype": port.get_element_type().get_type_name()}


def _describe_model(source: str, input_size: tuple[int, int] | None) -> dict[str, Any]:
    from segdeploy.errors import require

    require("torch", "export")
    from segdeploy.models.checkpoint import load_model
    from segdeploy.models.profile import profile_model

    model, meta = load_model(source)
    size = input_size or REPORT_SIZE
    profile = profile_model(model, size, int(meta.config.get("in_channels", 3)))
    described: dict[str, Any] = {"kind": "checkpoint" if Path(source).exists() else "preset", "path": source}
    if Path(source).exists():
        described |= {"size_bytes": Path(source).stat().st_size, "sha256": sha256_file(source)}
    return described | {
        "precision": meta.precision.value,
        "params": profile.params,
        "gflops": round(profile.gflops, 2),
        "gflops_input_size": list(size),
        "meta": meta.to_dict(),
    }


def describe_presets(input_size: tuple[int, int] = REPORT_SIZE) -> list[dict[str, Any]]:
    """Name, parameters and GFLOPs of every preset (built on the meta device: no weights)."""
    import torch

    from segdeploy.models.profile import profile_model
    from segdeploy.models.registry import create_model, get_entry, list_models

    rows = []
    for name in list_models():
        with torch.device("meta"):
            model = create_model(name)
        profile = profile_model(model, input_size)
        rows.append({"name": name, "params": profile.params, "gflops": round(profile.gflops, 2),
                     "input_size": list(input_size), "description": get_entry(name).description})
    return rows


def _tensor(value) -> dict[str, Any]:
    tensor_type = value.type.tensor_type
    shape = [d.dim_param or d.dim_value for d in tensor_type.shape.dim]
    dtype = _ONNX_DTYPES.get(tensor_type.elem_type, str(tensor_type.elem_type))
    return {"name": value.name, "shape": shape, "dtype": dtype}


# Optional backends: module to import, extra that installs it, and a probe of what it offers.
_BACKENDS = {
    "torch": ("torch", "export"),
    "onnxruntime": ("onnxruntime", "cpu"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "nncf"),
    "tensorrt": ("tensorrt", "tensorrt"),
    "cuda-python": ("cuda.bindings.runtime", "tensorrt"),
    "pycuda": ("pycuda.driver", "pycuda"),
    "matplotlib": ("matplotlib", "bench"),
}


def describe_environment() -> dict[str, Any]:
    """Versions of Python and packages, and which optional backends import and what they offer."""
    backends = {name: _probe(module, extra) for name, (module, extra) in _BACKENDS.items()}
    return {
        "segdeploy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "core": {pkg: _version(pkg) for pkg in ("numpy", "opencv-python-headless", "pillow", "onnx", "typer", "rich")},
        "backends": backends,
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _probe(module_name: str, extra: str) -> dict[str, Any]:
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or a broken install raising anything
        return {"usable": False, "detail": f"{type(exc).__name__}: {str(exc)[:80]}", "extra": extra}
    version = getattr(module, "__version__", None) or getattr(module, "get_version", lambda: None)()
    return {"usable": True, "version": str(version) if version else "?", "detail": _capabilities(module_name, module),
            "extra": extra}


def _capabilities(module_name: str, module) -> str:
    try:
        if module_name == "torch":
            return f"cuda available: {module.cuda.is_available()}"
        if module_name == "onnxruntime":
            return "providers: " + ", ".join(module.get_available_providers())
        if module_name == "openvino":
            return "devices: " + ", ".join(module.Core().available_devices)
    except Exception as exc:  # a backend that imports but cannot start is reported, not fatal
        return f"probe failed: {type(exc).__name__}: {str(exc)[:80]}"
    return ""
