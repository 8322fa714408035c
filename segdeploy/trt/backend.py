"""TensorRT backend: one execution context, buffers allocated once, pinned host staging, one stream.

Activation checks the sidecar manifest against this machine (one clear line instead of
TensorRT's serialization assertion), deserializes, and allocates device buffers at the
profile's maximum shape with pinned host buffers of the same size. ``infer``: copy into the
pinned input -> async H2D -> ``execute_async_v3`` -> async D2H on one non-default stream ->
one synchronise. CUDA events around each phase give ``phase_timings_ms`` (H2D, compute,
D2H), as trtexec reports them. ``cuda_graph=True`` captures the enqueue, one graph per input
shape (a new shape destroys the previous graph). The base class checks every batch against
the engine's input (dtype, rank, profile range).

``close()`` releases, in order: the graph, the TensorRT context/engine/runtime, the four
events, every device and pinned buffer, the stream, and the CUDA API object (PyCUDA pops its
context). Written to NVIDIA's TensorRT 10/11 API; not executed in this repository (no
TensorRT here): ``tests/trt/test_bookkeeping.py`` drives it with recording stand-ins.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np

from segdeploy.backends.base import Backend, InputSpec
from segdeploy.cuda import CudaApi, cuda_api
from segdeploy.engine_manifest import Environment, check_plan_hash, incompatibility, read_manifest
from segdeploy.errors import BadInputError, CheckFailedError, require

PHASES = ("h2d", "compute", "d2h")  # timed between consecutive events: 4 events, 3 phases


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, engine: str | os.PathLike, cuda_graph: bool = False) -> None:
        super().__init__()
        self._engine_path = Path(engine)
        self._cuda_graph = cuda_graph
        self._phases: dict[str, float] = {}
        self._reset()

    def _reset(self) -> None:
        """The state of a closed backend: no CUDA or TensorRT object is referenced."""
        self._cuda: CudaApi | None = None
        self._runtime = self._engine = self._context = None
        self._stream = None
        self._events: list = []
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._hosts: dict[str, np.ndarray] = {}  # pinned, per tensor
        self._pointers: dict[str, int] = {}  # device, per tensor
        self._graph, self._graph_shape = None, None

    @property
    def phase_timings_ms(self) -> dict[str, float]:
        """``h2d``, ``compute`` and ``d2h`` of the last ``infer`` in ms, from CUDA events on the stream."""
        return dict(self._phases)

    def _activate(self) -> InputSpec:
        trt = require("tensorrt", "tensorrt")
        self._cuda = cuda_api()
        version_compatible = self._check_manifest(trt.__version__)
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if version_compatible:
            self._runtime.engine_host_code_allowed = True  # VC plans carry a lean runtime; trusted plans only
        self._engine = self._runtime.deserialize_cuda_engine(self._engine_path.read_bytes())
        if self._engine is None:
            raise BadInputError(f"TensorRT cannot deserialize {self._engine_path.name} although its manifest matches "
                                "this machine; rebuild it with 'segdeploy build'")
        self._context = self._engine.create_execution_context()
        self._stream = self._cuda.stream_create()
        for _ in range(len(PHASES) + 1):  # each handle is recorded as soon as it exists, for _close
            self._events.append(self._cuda.event_create())
        names = [self._engine.get_tensor_name(i) for i in range(self._engine.num_io_tensors)]
        self._inputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if self._engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        for n in self._inputs:  # size every buffer at the profile's maximum
            self._context.set_input_shape(n, tuple(self._engine.get_tensor_profile_shape(n, 0)[2]))
        for n in names:
            self._hosts[n] = self._cuda.pinned_empty(tuple(self._context.get_tensor_shape(n)),
                                                     trt.nptype(self._engine.get_tensor_dtype(n)))
            self._pointers[n] = self._cuda.device_alloc(self._hosts[n].nbytes)
            self._context.set_tensor_address(n, self._pointers[n])
        return self._input_spec_of(self._inputs[0], trt)

    def _check_manifest(self, tensorrt_version: str) -> bool:
        """BadInputError unless the sidecar manifest says the plan runs here; whether it is version compatible."""
        manifest = read_manifest(self._engine_path)
        check_plan_hash(manifest, self._engine_path)
        name, capability = self._cuda.device_name_and_capability()
        here = Environment(tensorrt_version, manifest.built_on.cuda, name, capability, platform.system().lower(),
                           platform.machine())
        reason = incompatibility(manifest, here)
        if reason:
            raise BadInputError(f"{self._engine_path.name}: {reason}")
        return manifest.version_compatible

    def _input_spec_of(self, name: str, trt) -> InputSpec:
        """Dims TensorRT reports as -1 are dynamic; the range is optimisation profile 0's min and max."""
        low, _, high = self._engine.get_tensor_profile_shape(name, 0)
        shape = tuple(None if d < 0 else int(d) for d in self._engine.get_tensor_shape(name))
        dtype = np.dtype(trt.nptype(self._engine.get_tensor_dtype(name)))
        return InputSpec(name, dtype, shape, tuple(int(d) for d in low), tuple(int(d) for d in high))

    def _close(self) -> None:
        """Release everything ``_activate`` acquired, also after it failed part way."""
        cuda = self._cuda
        if cuda is not None:
            if self._stream is not None:
                cuda.stream_sync(self._stream)  # nothing may still read or write the buffers
            self._drop_graph()
            self._context = self._engine = self._runtime = None  # context before engine before runtime
            for event in self._events:
                cuda.event_destroy(event)
            for pointer in self._pointers.values():
                cuda.device_free(pointer)
            for host in self._hosts.values():
                cuda.free_pinned(host)
            if self._stream is not None:
                cuda.stream_destroy(self._stream)
            cuda.close()
        self._reset()

    def _drop_graph(self) -> None:
        if self._graph is not None:
            self._cuda.graph_destroy(self._graph)
        self._graph, self._graph_shape = None, None

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        name = self._input_spec.name
        self._context.set_input_shape(name, tuple(batch.shape))
        flat = self._hosts[name].reshape(-1)
        flat[: batch.size] = batch.ravel()
        cuda, stream, events = self._cuda, self._stream, self._events
        shapes = {n: tuple(self._context.get_tensor_shape(n)) for n in self._outputs}
        cuda.event_record(events[0], stream)
        cuda.copy_to_device(self._pointers[name], flat, batch.nbytes, stream)
        cuda.event_record(events[1], stream)
        self._enqueue(tuple(batch.shape))
        cuda.event_record(events[2], stream)
        for n, shape in shapes.items():
            cuda.copy_to_host(self._hosts[n], self._pointers[n], int(np.prod(shape)) * self._hosts[n].itemsize, stream)
        cuda.event_record(events[3], stream)
        cuda.stream_sync(stream)
        self._phases = {phase: cuda.event_elapsed_ms(start, end)
                        for phase, start, end in zip(PHASES, events, events[1:])}
        out_name = self._outputs[0]
        size = int(np.prod(shapes[out_name]))
        return self._hosts[out_name].reshape(-1)[:size].reshape(shapes[out_name]).copy()

    def _enqueue(self, shape: tuple[int, ...]) -> None:
        handle = self._cuda.stream_handle(self._stream)
        if self._cuda_graph and self._cuda.supports_graphs:
            if self._graph_shape != shape:  # a graph freezes shapes and addresses: one per shape
                self._drop_graph()
                self._graph = self._cuda.capture_graph(self._stream, lambda: self._context.execute_async_v3(handle))
                self._graph_shape = shape
            if self._graph is not None:
                self._cuda.launch_graph(self._graph, self._stream)
                return
        if not self._context.execute_async_v3(handle):
            raise CheckFailedError("TensorRT could not enqueue the inference (execute_async_v3 returned False)")
