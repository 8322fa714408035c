"""Eager PyTorch backend: the reference every exported artifact is compared with."""

from __future__ import annotations

import os

import numpy as np

from segdeploy.backends.base import Backend, InputSpec
from segdeploy.errors import BadInputError, MissingDependencyError, require

DEVICES = ("cpu", "cuda")


class TorchBackend(Backend):
    """Runs a segdeploy checkpoint (or preset name) in eval mode on ``device``.

    ``fp16=True`` autocasts to FP16 on CUDA (refused on the CPU, where autocast is bf16).
    Takes normalised float32 NCHW, returns float32 logits.
    """

    name = "torch"

    def __init__(self, checkpoint: str | os.PathLike, device: str = "cpu", fp16: bool = False,
                 threads: int | None = None) -> None:
        super().__init__()
        if device not in DEVICES:
            raise BadInputError(f"torch device must be one of {', '.join(DEVICES)}, got {device!r}")
        if fp16 and device != "cuda":
            raise BadInputError("fp16 autocast needs --device cuda")
        self._checkpoint, self._device, self._fp16, self._threads = os.fspath(checkpoint), device, fp16, threads
        self._model = None

    def _activate(self) -> InputSpec:
        """An eager model takes any batch and size: the spec fixes rank, dtype and channels only."""
        torch = require("torch", "export")
        from segdeploy.models.checkpoint import load_model

        if self._device == "cuda" and not torch.cuda.is_available():
            raise MissingDependencyError("device cuda is not available (torch sees no CUDA GPU); use --device cpu")
        if self._threads:
            torch.set_num_threads(self._threads)
        model, meta = load_model(self._checkpoint)
        self._threads_used = torch.get_num_threads() if self._device == "cpu" else None
        self._model = model.to(self._device)
        channels = meta.config.get("in_channels", 3)
        return InputSpec(meta.io.input_name, np.dtype(np.float32), (None, channels, None, None))

    def _close(self) -> None:
        self._model = None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        import torch

        inputs = torch.from_numpy(batch).to(self._device)
        with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=self._fp16):
            return self._model(inputs).float().cpu().numpy()
