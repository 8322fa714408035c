"""OpenVINO backend: compiles an ONNX or IR model for the CPU."""

from __future__ import annotations

import os

import numpy as np

from segdeploy.backends.base import Backend, InputSpec
from segdeploy.errors import BadInputError, require
from segdeploy.ir_file import check_ir_pair, openvino_reason

PRECISIONS = ("auto", "f32", "bf16")


class OpenVinoBackend(Backend):
    """``precision="auto"`` lets OpenVINO choose (bf16 on CPUs that have it); ``f32`` forces float32."""

    name = "openvino"

    def __init__(self, model: str | os.PathLike, precision: str = "auto", threads: int | None = None,
                 hint: str = "LATENCY") -> None:
        super().__init__()
        if precision not in PRECISIONS:
            raise BadInputError(f"OpenVINO precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self._model = os.fspath(model)
        self._precision, self._threads, self._hint = precision, threads, hint
        self._compiled = self._request = None
        self._executed: str | None = None

    @property
    def execution_precision(self) -> str | None:
        """What OpenVINO chose (``precision="auto"``: bf16 on CPUs that have it) or was told, as
        ``f32``/``bf16``/``f16``; kept after ``close()`` for reports."""
        return self._executed

    def _activate(self) -> InputSpec:
        ov = require("openvino", "openvino")
        config = {"PERFORMANCE_HINT": self._hint}
        if self._threads:
            config["INFERENCE_NUM_THREADS"] = self._threads
        if self._precision != "auto":
            config["INFERENCE_PRECISION_HINT"] = self._precision
        if self._model.lower().endswith(".xml"):  # an IR pair (OpenVINO also reads .onnx directly)
            check_ir_pair(self._model)
        try:
            compiled = ov.Core().compile_model(self._model, "CPU", config)
            request = compiled.create_infer_request()  # a damaged IR can compile and fail here
            port = compiled.input(0)
        except Exception as exc:  # OpenVINO raises RuntimeError subclasses with long messages
            raise BadInputError(f"OpenVINO cannot compile {self._model}: {openvino_reason(exc)}") from exc
        self._executed = compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._threads_used = int(compiled.get_property("INFERENCE_NUM_THREADS"))
        self._compiled, self._request = compiled, request
        return _input_spec(port)

    def _close(self) -> None:
        self._request = self._compiled = None

    def infer_many(self, batches: list[np.ndarray], jobs: int = 0) -> list[np.ndarray]:
        """Throughput mode: ``batches`` through an asynchronous queue of infer requests (``jobs``
        0 lets OpenVINO pick the optimal number for the performance hint); results in order. Every
        batch is checked as ``infer`` checks it; ``last_inference_ms`` is not set."""
        self._require_active()
        for batch in batches:
            self._check_input(batch)
        ov = require("openvino", "openvino")
        queue = ov.AsyncInferQueue(self._compiled, jobs)
        results: list[np.ndarray | None] = [None] * len(batches)

        def done(request, index: int) -> None:
            results[index] = request.get_output_tensor(0).data.copy()

        queue.set_callback(done)
        for index, batch in enumerate(batches):
            queue.start_async({0: batch}, index)
        queue.wait_all()
        return results

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self._request.infer({0: batch})
        return self._request.get_output_tensor(0).data.copy()


def _input_spec(port) -> InputSpec:
    """From the compiled model's first input port; dynamic dims (or a dynamic rank) -> None."""
    partial = port.get_partial_shape()
    shape = None if partial.rank.is_dynamic else tuple(d.get_length() if d.is_static else None for d in partial)
    return InputSpec(port.get_any_name(), np.dtype(port.get_element_type().to_dtype()), shape)
