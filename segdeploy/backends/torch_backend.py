"""Eager PyTorch backend: the reference every exported artifact is compared with.

On CUDA it runs through ``segdeploy.backends.torch_cuda.CudaRunner`` (pinned staging per shape,
its own stream, optional CUDA graph replay, h2d/compute/d2h timings); on the CPU it runs the
model directly on the numpy batch's memory.
"""

from __future__ import annotations

import os
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np

from segdeploy.backends.base import Backend, InputSpec
from segdeploy.errors import BadInputError, MissingDependencyError, check_choice, require

if TYPE_CHECKING:
    from torch import nn

    from segdeploy.backends.torch_cuda import CudaRunner

DEVICES = ("cpu", "cuda")


class Autocast(StrEnum):
    """Mixed precision for the eager model (``torch.autocast``): off, fp16 (CUDA only) or bf16."""

    OFF = "off"
    FP16 = "fp16"
    BF16 = "bf16"


class TorchBackend(Backend):
    """Runs a segdeploy checkpoint (or preset name) in eval mode on ``device``.

    ``autocast``: fp16 on CUDA only; bf16 on CUDA (compute capability 8.0+) and on the CPU.
    ``channels_last``: the model and each batch in NHWC memory order (tensor cores and oneDNN prefer it).
    ``cuda_graph``: CUDA only; one graph captured per input shape, replayed afterwards.
    Takes normalised float32 NCHW, returns float32 NCHW logits.
    """

    name = "torch"

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", autocast: str = Autocast.OFF,
                 threads: int | None = None, channels_last: bool = False, cuda_graph: bool = False) -> None:
        super().__init__()
        if device not in DEVICES:
            raise BadInputError(f"torch device must be one of {', '.join(DEVICES)}, got {device!r}")
        autocast = check_choice(Autocast, autocast, "torch autocast")
        if autocast == Autocast.FP16 and device != "cuda":
            raise BadInputError("fp16 autocast needs --device cuda (the CPU autocasts to bf16)")
        if cuda_graph and device != "cuda":
            raise BadInputError("CUDA graphs need --device cuda")
        self._checkpoint, self._device, self._threads = os.fspath(checkpoint), device, threads
        self._autocast, self._channels_last, self._cuda_graph = autocast, channels_last, cuda_graph
        self._model: nn.Module | None = None
        self._runner: CudaRunner | None = None  # on CUDA

    @property
    def phase_timings_ms(self) -> dict[str, float]:
        """On CUDA: ``h2d``, ``compute`` and ``d2h`` of the last ``infer`` in ms, from CUDA events."""
        return dict(self._runner.phases) if self._runner is not None else {}

    @property
    def cuda_runner(self) -> CudaRunner | None:
        """The active CudaRunner (its ``pinned_buffers_made`` and ``graphs_captured``), None on the CPU."""
        return self._runner

    def _activate(self) -> InputSpec:
        """An eager model takes any batch and size: the spec fixes rank, dtype and channels only."""
        torch = require("torch", "export")
        from segdeploy.models.checkpoint import load_model

        if self._device == "cuda":
            _check_cuda(torch, self._autocast)
        if self._threads:
            torch.set_num_threads(self._threads)
        model, meta = load_model(self._checkpoint)
        self._threads_used = torch.get_num_threads() if self._device == "cpu" else None
        model = model.to(self._device)
        if self._channels_last:  # a documented keyword of Module.to that torch's overloads leave out
            model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._model = model
        if self._device == "cuda":
            from segdeploy.backends.torch_cuda import CudaRunner

            dtype = {Autocast.FP16: torch.float16, Autocast.BF16: torch.bfloat16}.get(self._autocast)
            self._runner = CudaRunner(model, dtype, self._channels_last, self._cuda_graph)
        channels = meta.config.get("in_channels", 3)
        return InputSpec(meta.io.input_name, np.dtype(np.float32), (None, channels, None, None))

    def _close(self) -> None:
        runner, self._runner, self._model = self._runner, None, None
        if runner is not None:
            runner.close()

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        if self._runner is not None:
            return self._runner.run(batch)
        import torch

        assert self._model is not None  # active: _activate set it

        inputs = torch.from_numpy(batch)
        if self._channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=self._autocast == Autocast.BF16):
            return self._model(inputs).float().contiguous().numpy()


def _check_cuda(torch, autocast: Autocast) -> None:
    if not torch.cuda.is_available():
        raise MissingDependencyError("device cuda is not available (torch sees no CUDA GPU); use --device cpu")
    if autocast == Autocast.BF16 and not torch.cuda.is_bf16_supported():
        raise MissingDependencyError(f"{torch.cuda.get_device_name()} has no bf16 support; use fp16 autocast")
