"""ONNX Runtime backend (CPU provider; CUDA/TensorRT providers with onnxruntime-gpu).

ONNX Runtime 1.32's graph optimiser rewrites Q/DQ nodes with FP16 scales (the INT8 models
with an FP16 remainder made for TensorRT) into Cast/Mul/Div/Round chains that compute wrong
results on the CPU provider: a U-Net's argmax agreement fell from 99.6 % to 41 %. Such
models run here with graph optimisation off, which gives the right answer.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading

import numpy as np
import onnx

from segdeploy.backends.base import Backend, InputSpec
from segdeploy.errors import BadInputError, MissingDependencyError, printable, require, shorten
from segdeploy.isa import physical_cores
from segdeploy.onnx_graph import has_fp16_qdq, load_onnx
from segdeploy.reading import LOGGER

FATAL_ONLY = 4  # onnxruntime's log severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal
_STDOUT_SWAP = threading.Lock()

class OnnxRuntimeBackend(Backend):
    """Runs an ONNX model (a path or serialized bytes) with explicit providers."""

    name = "onnxruntime"

    def __init__(
        self,
        model: str | os.PathLike | bytes,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        threads: int | None = None,
        optimize: bool = True,
    ) -> None:
        super().__init__()
        self._model = model if isinstance(model, bytes) else os.fspath(model)
        self._providers = providers
        self._threads = threads
        self._optimize = optimize
        self._session = None
        self.optimized = True  # False once activated on a model whose Q/DQ scales are FP16

    def _activate(self) -> InputSpec:
        ort = require("onnxruntime", "cpu")
        missing = [p for p in self._providers if p not in ort.get_available_providers()]
        if missing:
            raise MissingDependencyError(
                f"onnxruntime provider(s) {', '.join(missing)} not available "
                f"(have {', '.join(ort.get_available_providers())}); for CUDA install 'segdeploy[gpu]'"
            )
        # Errors reach the caller as exceptions; onnxruntime would also log them (in colour, on stderr) at level 3.
        ort.set_default_logger_severity(FATAL_ONLY)  # the process-wide logger speaks before the options apply
        options = ort.SessionOptions()
        options.log_severity_level = FATAL_ONLY
        if self._threads:
            options.intra_op_num_threads = self._threads
        self.optimized = self._optimize and not has_fp16_qdq(self._load_graph())
        if not self.optimized:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        printed = io.StringIO()  # onnxruntime print()s "EP Error ... Falling back" on stdout
        try:
            # sys.stdout is process-wide: one activation at a time swaps it, so each restores what it found
            with _STDOUT_SWAP, contextlib.redirect_stdout(printed):
                self._session = ort.InferenceSession(self._model, options, providers=list(self._providers))
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BadInputError(f"onnxruntime cannot load the model: {ort_reason(exc)}") from exc
        finally:
            if printed.getvalue().strip():
                LOGGER.debug("onnxruntime: %s", printed.getvalue().strip())
        try:
            self._output = self._session.get_outputs()[0].name
            spec = _input_spec(self._session.get_inputs()[0])
        except UnicodeDecodeError as exc:  # onnxruntime decodes the graph's names only when asked
            raise BadInputError("onnxruntime cannot load the model: its input or output name is not UTF-8 text "
                                "(a damaged file)") from exc
        # ONNX Runtime has no getter for its thread pool; unset, its documented default is the physical cores.
        on_cpu = self._session.get_providers()[0] == "CPUExecutionProvider"
        self._threads_used = (self._threads or physical_cores()) if on_cpu else None
        return spec

    def _load_graph(self) -> onnx.ModelProto:
        if isinstance(self._model, bytes):
            return onnx.load_from_string(self._model)
        return load_onnx(self._model, load_weights=False)

    def _close(self) -> None:
        self._session = None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        try:
            return self._session.run([self._output], {self._input_spec.name: batch})[0]
        except Exception as exc:  # the batch fits the input spec, so the graph itself cannot run (damaged model)
            raise BadInputError(f"onnxruntime cannot run the model on a {_shape(batch)} input: "
                                f"{ort_reason(exc)}") from exc


def ort_reason(exc: Exception) -> str:
    """onnxruntime's message without its error-code prefix, C++ source paths and function signatures."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", text)
    text = re.sub(r"/onnxruntime_src/\S*?:\d+ ", " ", text)
    text = re.sub(r"(?:[\w:<>,&*]+ )?[\w:<>]*onnxruntime::[\w:]+\([^)]*\)(?: const)? ", "", text)
    text = " ".join(text.replace(" Status Message: ", ": ").split())
    text = re.sub(r"^Load model from .*? failed:\s*", "", text)  # the caller names the file; keep the reason
    return shorten(printable(text)) if text else type(exc).__name__


def _shape(batch: np.ndarray) -> str:
    return "x".join(map(str, batch.shape))


def _input_spec(node) -> InputSpec:
    """From ONNX Runtime's NodeArg: ``tensor(float)`` -> float32; symbolic or unknown dims -> None."""
    element = node.type.removeprefix("tensor(").removesuffix(")")
    try:
        dtype = np.dtype({"float": "float32", "double": "float64"}.get(element, element))
    except TypeError as exc:
        raise BadInputError(f"the model's input {node.name!r} is {node.type}; segdeploy feeds numeric arrays") from exc
    shape = None if node.shape is None else tuple(d if isinstance(d, int) and d >= 0 else None for d in node.shape)
    return InputSpec(node.name, dtype, shape)
