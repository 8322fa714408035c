"""TensorRT backend: one execution context, buffers allocated once, pinned host staging, one stream.

Activation checks the sidecar manifest against this machine (one clear line instead of
TensorRT's serialization assertion), deserializes, and allocates device buffers at the
profile's maximum shape with pinned host buffers of the same size. ``infer``: copy into the
pinned input -> async H2D -> ``execute_async_v3`` -> async D2H on one non-default stream ->
one synchronise. CUDA events around each phase give ``last_timings`` (H2D, compute, D2H in
ms), as trtexec reports them. ``cuda_graph=True`` captures the enqueue for static shapes.
Written to NVIDIA's TensorRT 10/11 API; not executed in this repository (no TensorRT here).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from segdeploy.build.manifest import Environment, check_plan_hash, incompatibility, read_manifest
from segdeploy.errors import BadInputError, CheckFailedError, require
from segdeploy.runtime.base import Backend


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, engine: str | os.PathLike, cuda_graph: bool = False, cuda: str | None = None) -> None:
        super().__init__()
        self._engine_path = Path(engine)
        self._cuda_graph, self._prefer = cuda_graph, cuda
        self.last_timings: dict[str, float] = {}
        self._buffers: dict[str, tuple[np.ndarray, int]] = {}

    def _activate(self) -> None:
        trt = require("tensorrt", "tensorrt")
        from segdeploy.runtime.cuda_memory import cuda_api

        manifest = read_manifest(self._engine_path)
        check_plan_hash(manifest, self._engine_path)
        self._cuda = cuda_api(self._prefer)
        name, capability = self._cuda.device_name_and_capability()
        here = Environment(trt.__version__, manifest.built_on.cuda, name, capability, platform.system().lower(),
                           platform.machine())
        reason = incompatibility(manifest, here)
        if reason:
            raise BadInputError(f"{self._engine_path.name}: {reason}")
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if manifest.version_compatible:
            self._runtime.engine_host_code_allowed = True  # VC plans carry a lean runtime; trusted plans only
        self._engine = self._runtime.deserialize_cuda_engine(self._engine_path.read_bytes())
        if self._engine is None:
            raise BadInputError(f"TensorRT cannot deserialize {self._engine_path.name} although its manifest matches "
                                "this machine; rebuild it with 'segdeploy build'")
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.stream_create()
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        self._ranges = {n: self._engine.get_tensor_profile_shape(n, 0) for n in self._inputs}
        for n in self._inputs:
            self._context.set_input_shape(n, tuple(self._ranges[n][2]))  # size everything at the profile max
        for n in names:
            dtype = trt.nptype(self._engine.get_tensor_dtype(n))
            host = self._cuda.pinned_empty(tuple(self._context.get_tensor_shape(n)), dtype)
            pointer = self._cuda.device_alloc(host.nbytes)
            self._context.set_tensor_address(n, pointer)
            self._buffers[n] = (host, pointer)
        self._events = [self._cuda.event_create() for _ in range(4)]
        self._graph, self._graph_shape = None, None

    def _close(self) -> None:
        for host, pointer in self._buffers.values():
            self._cuda.device_free(pointer)
            self._cuda.free_pinned(host)
        self._buffers.clear()
        self._cuda.stream_destroy(self._stream)
        self._context = self._engine = self._runtime = None
        self._graph = None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        name = self._inputs[0]
        low, _, high = self._ranges[name]
        if not (len(batch.shape) == len(low) and all(lo <= d <= hi for lo, d, hi in zip(low, batch.shape, high))):
            raise BadInputError(f"input {tuple(batch.shape)} is outside the engine's profile "
                                f"{tuple(low)} .. {tuple(high)}; rebuild with wider --min-shape/--max-shape")
        host, pointer = self._buffers[name]
        if batch.dtype != host.dtype:
            raise BadInputError(f"the engine takes {host.dtype} input, got {batch.dtype}")
        self._context.set_input_shape(name, tuple(batch.shape))
        flat = host.reshape(-1)
        flat[: batch.size] = batch.ravel()
        cuda, stream, events = self._cuda, self._stream, self._events
        shapes = {n: tuple(self._context.get_tensor_shape(n)) for n in self._outputs}
        cuda.event_record(events[0], stream)
        cuda.copy_to_device(pointer, flat, batch.nbytes, stream)
        cuda.event_record(events[1], stream)
        self._enqueue(tuple(batch.shape))
        cuda.event_record(events[2], stream)
        for n, shape in shapes.items():
            out_host, out_pointer = self._buffers[n]
            cuda.copy_to_host(out_host, out_pointer, int(np.prod(shape)) * out_host.itemsize, stream)
        cuda.event_record(events[3], stream)
        cuda.stream_sync(stream)
        self.last_timings = {"h2d_ms": cuda.event_elapsed_ms(events[0], events[1]),
                             "compute_ms": cuda.event_elapsed_ms(events[1], events[2]),
                             "d2h_ms": cuda.event_elapsed_ms(events[2], events[3])}
        out_name = self._outputs[0]
        size = int(np.prod(shapes[out_name]))
        return self._buffers[out_name][0].reshape(-1)[:size].reshape(shapes[out_name]).copy()

    def _enqueue(self, shape: tuple[int, ...]) -> None:
        handle = self._cuda.stream_handle(self._stream)
        if self._cuda_graph and self._cuda.supports_graphs:
            if self._graph_shape != shape:  # a graph freezes shapes and addresses: one per shape
                self._graph = self._cuda.capture_graph(self._stream, lambda: self._context.execute_async_v3(handle))
                self._graph_shape = shape
            if self._graph is not None:
                self._cuda.launch_graph(self._graph, self._stream)
                return
        if not self._context.execute_async_v3(handle):
            raise CheckFailedError("TensorRT could not enqueue the inference (execute_async_v3 returned False)")
