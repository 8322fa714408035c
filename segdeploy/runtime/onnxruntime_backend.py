"""ONNX Runtime backend (CPU provider; CUDA/TensorRT providers with onnxruntime-gpu)."""

from __future__ import annotations

import os

import numpy as np

from segdeploy.errors import BadInputError, MissingDependencyError, require
from segdeploy.runtime.base import Backend


class OnnxRuntimeBackend(Backend):
    """Runs an ONNX model (a path or serialized bytes) with explicit providers."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        threads: int | None = None,
    ) -> None:
        super().__init__()
        self._model = model if isinstance(model, bytes) else os.fspath(model)
        self._providers = providers
        self._threads = threads
        self._session = None

    def _activate(self) -> None:
        ort = require("onnxruntime", "cpu")
        missing = [p for p in self._providers if p not in ort.get_available_providers()]
        if missing:
            raise MissingDependencyError(
                f"onnxruntime provider(s) {', '.join(missing)} not available "
                f"(have {', '.join(ort.get_available_providers())}); for CUDA install 'segdeploy[gpu]'"
            )
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if self._threads:
            options.intra_op_num_threads = self._threads
        try:
            self._session = ort.InferenceSession(self._model, options, providers=list(self._providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BadInputError(f"onnxruntime cannot load the model: {str(exc).splitlines()[0]}") from exc
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name

    def _close(self) -> None:
        self._session = None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self._session.run([self._output], {self._input: batch})[0]
