"""Which backend runs an artifact, and the backend object for it.

.pt/.pth -> torch, .onnx -> onnxruntime, .xml -> openvino (IR), .engine/.trt/.plan -> tensorrt.
The metadata of each format is read by ``segdeploy.artifact_meta``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

from segdeploy.artifact_meta import ArtifactFormat, artifact_format
from segdeploy.backends.base import Backend
from segdeploy.errors import BadInputError, MissingDependencyError, check_choice, check_range, require
from segdeploy.limits import MAX_THREADS


class BackendKind(StrEnum):
    AUTO = "auto"  # by the artifact's file type
    TORCH = "torch"
    ONNXRUNTIME = "onnxruntime"
    OPENVINO = "openvino"
    TENSORRT = "tensorrt"


class Device(StrEnum):
    AUTO = "auto"  # CUDA where the backend has it, else the CPU
    CPU = "cpu"
    CUDA = "cuda"


BACKEND_OF_FORMAT = {ArtifactFormat.CHECKPOINT: BackendKind.TORCH, ArtifactFormat.ONNX: BackendKind.ONNXRUNTIME,
                     ArtifactFormat.OPENVINO: BackendKind.OPENVINO, ArtifactFormat.ENGINE: BackendKind.TENSORRT}


@dataclass(frozen=True)
class BackendOptions:
    """Backend settings a Segmenter passes on; each backend uses the ones that apply to it."""

    threads: int | None = None  # intra-op threads (torch, onnxruntime, openvino)
    precision: str = "auto"  # openvino inference precision: auto | f32 | bf16
    hint: str = "LATENCY"  # openvino performance hint: LATENCY | THROUGHPUT
    autocast: str = "off"  # torch: off | fp16 (CUDA) | bf16 mixed precision
    channels_last: bool = False  # torch: NHWC memory order for the model and each batch
    optimize: bool = True  # onnxruntime graph optimisation (off for FP16-scale Q/DQ regardless)
    cuda_graph: bool = False  # tensorrt and torch on CUDA: replay a CUDA graph per input shape

    def __post_init__(self) -> None:
        if self.threads is not None:
            check_range(self.threads, "threads", low=1, high=MAX_THREADS)


def backend_for(path: str | os.PathLike, backend: str = BackendKind.AUTO) -> BackendKind:
    """The backend for ``path`` (by its file type) or the forced ``backend``."""
    backend = check_choice(BackendKind, backend, "the backend")
    return BACKEND_OF_FORMAT[artifact_format(path)] if backend == BackendKind.AUTO else backend


def make_backend(path: str | os.PathLike, kind: str, device: str, options: BackendOptions) -> Backend:
    """A (not yet active) backend of ``kind`` for ``path`` on ``device`` (auto, cpu or cuda)."""
    device = check_choice(Device, device, "the device")
    if kind == "torch":
        from segdeploy.backends.torch_backend import TorchBackend

        return TorchBackend(path, _torch_device(device), options.autocast, options.threads, options.channels_last,
                            options.cuda_graph)
    if kind == "onnxruntime":
        from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(path, _onnxruntime_providers(device), options.threads, options.optimize)
    if kind == "openvino":
        if device == "cuda":
            raise MissingDependencyError("the openvino backend runs on the CPU here; use --device cpu or another "
                                         "backend for CUDA")
        from segdeploy.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(path, options.precision, options.threads, options.hint)
    if device == "cpu":
        raise BadInputError("a TensorRT engine runs on an NVIDIA GPU; use --device cuda or auto")
    require("tensorrt", "tensorrt")
    from segdeploy.trt.backend import TensorRTBackend

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
