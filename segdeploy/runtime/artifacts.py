"""Which backend runs an artifact, its metadata, and the backend object for it.

.pt/.pth -> torch, .onnx -> onnxruntime, .xml -> openvino (IR), .engine/.trt/.plan -> tensorrt.
Metadata: checkpoint payload, ONNX ``metadata_props``, OpenVINO ``rt_info``, engine sidecar JSON.
Reading metadata never imports torch for a non-checkpoint artifact.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from segdeploy.errors import BadInputError, MissingDependencyError, require
from segdeploy.fileio import require_file
from segdeploy.metadata import ArtifactMeta
from segdeploy.runtime.base import Backend

BACKEND_OF_SUFFIX = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".xml": "openvino",
                     ".engine": "tensorrt", ".trt": "tensorrt", ".plan": "tensorrt"}
BACKENDS = ("torch", "onnxruntime", "openvino", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
OPENVINO_META_PATH = ["segdeploy", "meta"]


@dataclass(frozen=True)
class BackendOptions:
    """Backend settings a Segmenter passes on; each backend uses the ones that apply to it."""

    threads: int | None = None  # intra-op threads (torch, onnxruntime, openvino)
    precision: str = "auto"  # openvino inference precision: auto | f32 | bf16
    hint: str = "LATENCY"  # openvino performance hint: LATENCY | THROUGHPUT
    fp16: bool = False  # torch: FP16 autocast on CUDA
    optimize: bool = True  # onnxruntime graph optimisation (off for FP16-scale Q/DQ regardless)
    cuda_graph: bool = False  # tensorrt: capture the enqueue in a CUDA graph (static shapes)


def backend_for(path: str | os.PathLike, backend: str = "auto") -> str:
    """The backend name for ``path`` (by suffix) or the forced ``backend``."""
    if backend != "auto":
        if backend not in BACKENDS:
            raise BadInputError(f"unknown backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
        return backend
    suffix = Path(path).suffix.lower()
    if suffix not in BACKEND_OF_SUFFIX:
        raise BadInputError(f"{path}: unknown artifact type {suffix or '(no suffix)'!r}; expected one of "
                            f"{', '.join(sorted(BACKEND_OF_SUFFIX))}")
    return BACKEND_OF_SUFFIX[suffix]


def read_artifact_meta(path: str | os.PathLike) -> ArtifactMeta:
    """The segdeploy metadata carried by the artifact at ``path``."""
    path = require_file(path, "artifact")
    kind = backend_for(path)
    if kind == "torch":
        from segdeploy.models.checkpoint import load_model

        return load_model(path)[1]
    if kind == "onnxruntime":
        from segdeploy.onnx_meta import load_onnx, read_metadata

        return read_metadata(load_onnx(path, load_weights=False), str(path))
    if kind == "openvino":
        return _openvino_meta(path)
    from segdeploy.build.manifest import read_manifest

    return read_manifest(path).artifact_meta()


def _openvino_meta(path: Path) -> ArtifactMeta:
    ov = require("openvino", "openvino")
    try:
        model = ov.Core().read_model(str(path))
    except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
        raise BadInputError(f"{path} is not a readable OpenVINO IR: {str(exc).splitlines()[0][:200]}") from exc
    if not model.has_rt_info(OPENVINO_META_PATH):
        raise BadInputError(f"{path} has no segdeploy metadata; convert it with 'segdeploy export MODEL.onnx "
                            "--format openvino'")
    return ArtifactMeta.from_json(model.get_rt_info(OPENVINO_META_PATH).astype(str))


def make_backend(path: str | os.PathLike, kind: str, device: str, options: BackendOptions) -> Backend:
    """A (not yet active) backend of ``kind`` for ``path`` on ``device`` (auto, cpu or cuda)."""
    if device not in DEVICES:
        raise BadInputError(f"unknown device {device!r}; choose {', '.join(DEVICES)}")
    if kind == "torch":
        from segdeploy.runtime.torch_backend import TorchBackend

        return TorchBackend(path, _torch_device(device), options.fp16, options.threads)
    if kind == "onnxruntime":
        from segdeploy.runtime.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, _onnxruntime_providers(device), options.threads, options.optimize)
    if kind == "openvino":
        if device == "cuda":
            raise MissingDependencyError("the openvino backend runs on the CPU here; use --device cpu or another "
                                         "backend for CUDA")
        from segdeploy.runtime.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(path, options.precision, options.threads, options.hint)
    if device == "cpu":
        raise BadInputError("a TensorRT engine runs on an NVIDIA GPU; use --device cuda or auto")
    require("tensorrt", "tensorrt")
    from segdeploy.runtime.tensorrt_backend import TensorRTBackend

    return TensorRTBackend(path, cuda_graph=options.cuda_graph)


def _torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _onnxruntime_providers(device: str) -> tuple[str, ...]:
    if device == "cuda":
        return ("CUDAExecutionProvider", "CPUExecutionProvider")
    if device == "auto":
        ort = require("onnxruntime", "cpu")
        if "CUDAExecutionProvider" in ort.get_available_providers():
            return ("CUDAExecutionProvider", "CPUExecutionProvider")
    return ("CPUExecutionProvider",)
