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
from typing import TYPE_CHECKING

import numpy as np

from segdeploy.backends.base import DEVICE_PHASES, Backend, InputSpec
from segdeploy.cuda import CudaApi, cuda_api
from segdeploy.engine_manifest import Environment, check_plan_hash, incompatibility, read_manifest
from segdeploy.errors import BadInputError, CheckFailedError, require

if TYPE_CHECKING:  # for mypy, against TensorRT's stubs; at run time TensorRT is imported by _activate
    import tensorrt as trt



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
        self._runtime: trt.Runtime | None = None
        self._engine: trt.ICudaEngine | None = None
        self._context: trt.IExecutionContext | None = None
        self._stream: object | None = None  # streams, events and graphs: handles of self._cuda
        self._events: list[object] = []
        self._inputs: list[str] = []
        self._outputs: list[str] = []
        self._hosts: dict[str, np.ndarray] = {}  # pinned, per tensor
        self._pointers: dict[str, int] = {}  # device, per tensor
        self._graph: object | None = None
        self._graph_shape: tuple[int, ...] | None = None

    @property
    def phase_timings_ms(self) -> dict[str, float]:
        """``h2d``, ``compute`` and ``d2h`` of the last ``infer`` in ms, from CUDA events on the stream."""
        return dict(self._phases)

    def _activate(self) -> InputSpec:
        require("tensorrt", "tensorrt")  # MissingDependencyError naming the extra; then the typed import
        import tensorrt as trt

        # Each object is stored as soon as it exists, for _close; the locals are the same objects, typed.
        cuda = self._cuda = cuda_api()
        version_compatible = self._check_manifest(cuda, trt.__version__)
        runtime = self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if version_compatible:
            runtime.engine_host_code_allowed = True  # VC plans carry a lean runtime; trusted plans only
        engine = self._engine = runtime.deserialize_cuda_engine(self._engine_path.read_bytes())
        if engine is None:  # the stub says ICudaEngine; TensorRT returns None for a plan it refuses
            raise BadInputError(f"TensorRT cannot deserialize {self._engine_path.name} although its manifest matches "
                                "this machine; rebuild it with 'segdeploy build'")
        context = self._context = engine.create_execution_context()
        self._stream = cuda.stream_create()
        for _ in range(len(DEVICE_PHASES) + 1):
            self._events.append(cuda.event_create())
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        self._inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self._outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        for n in self._inputs:  # size every buffer at the profile's maximum
            context.set_input_shape(n, _shape(engine.get_tensor_profile_shape(n, 0)[2]))
        for n in names:
            dtype = trt.nptype(engine.get_tensor_dtype(n))
            self._hosts[n] = cuda.pinned_empty(_shape(context.get_tensor_shape(n)), dtype)
            self._pointers[n] = cuda.device_alloc(self._hosts[n].nbytes)
            context.set_tensor_address(n, self._pointers[n])
        return _input_spec(engine, self._inputs[0])

    def _check_manifest(self, cuda: CudaApi, tensorrt_version: str) -> bool:
        """BadInputError unless the sidecar manifest says the plan runs here; whether it is version compatible."""
        manifest = read_manifest(self._engine_path)
        check_plan_hash(manifest, self._engine_path)
        name, capability = cuda.device_name_and_capability()
        here = Environment(tensorrt_version, manifest.built_on.cuda, name, capability, platform.system().lower(),
                           platform.machine())
        reason = incompatibility(manifest, here)
        if reason:
            raise BadInputError(f"{self._engine_path.name}: {reason}")
        return manifest.version_compatible

    def _close(self) -> None:
        """Release everything ``_activate`` acquired, also after it failed part way."""
        cuda = self._cuda
        if cuda is not None:
            if self._stream is not None:
                cuda.stream_sync(self._stream)  # nothing may still read or write the buffers
            self._drop_graph(cuda)
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

    def _drop_graph(self, cuda: CudaApi) -> None:
        if self._graph is not None:
            cuda.graph_destroy(self._graph)
        self._graph, self._graph_shape = None, None

    def _live(self) -> tuple[CudaApi, trt.IExecutionContext]:
        """The CUDA API and execution context, for ``_infer``: the base class calls it only while active."""
        assert self._cuda is not None and self._context is not None  # set by _activate; narrows the types
        return self._cuda, self._context

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        cuda, context = self._live()
        name = self.input_spec.name
        context.set_input_shape(name, tuple(batch.shape))
        flat = self._hosts[name].reshape(-1)
        flat[: batch.size] = batch.ravel()
        stream, events = self._stream, self._events
        shapes = {n: _shape(context.get_tensor_shape(n)) for n in self._outputs}
        cuda.event_record(events[0], stream)
        cuda.copy_to_device(self._pointers[name], flat, batch.nbytes, stream)
        cuda.event_record(events[1], stream)
        self._enqueue(cuda, context, tuple(batch.shape))
        cuda.event_record(events[2], stream)
        for n, shape in shapes.items():
            cuda.copy_to_host(self._hosts[n], self._pointers[n], int(np.prod(shape)) * self._hosts[n].itemsize, stream)
        cuda.event_record(events[3], stream)
        cuda.stream_sync(stream)
        self._phases = {phase: cuda.event_elapsed_ms(start, end)
                        for phase, start, end in zip(DEVICE_PHASES, events, events[1:])}
        out_name = self._outputs[0]
        size = int(np.prod(shapes[out_name]))
        return self._hosts[out_name].reshape(-1)[:size].reshape(shapes[out_name]).copy()

    def _enqueue(self, cuda: CudaApi, context: trt.IExecutionContext, shape: tuple[int, ...]) -> None:
        handle = cuda.stream_handle(self._stream)
        if self._cuda_graph and cuda.supports_graphs:
            if self._graph_shape != shape:  # a graph freezes shapes and addresses: one per shape
                self._drop_graph(cuda)
                self._graph = cuda.capture_graph(self._stream, lambda: context.execute_async_v3(handle))
                self._graph_shape = shape
            if self._graph is not None:
                cuda.launch_graph(self._graph, self._stream)
                return
        if not context.execute_async_v3(handle):
            raise CheckFailedError("TensorRT could not enqueue the inference (execute_async_v3 returned False)")


def _input_spec(engine: trt.ICudaEngine, name: str) -> InputSpec:
    """Dims TensorRT reports as -1 are dynamic; the range is optimisation profile 0's min and max."""
    import tensorrt as trt  # already imported by _activate

    low, _, high = engine.get_tensor_profile_shape(name, 0)
    shape = tuple(None if d < 0 else d for d in _shape(engine.get_tensor_shape(name)))
    dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name)))
    return InputSpec(name, dtype, shape, _shape(low), _shape(high))


def _shape(dims: trt.Dims) -> tuple[int, ...]:
    """TensorRT's Dims as a tuple. Indexed, not iterated: Dims iterates through ``__getitem__``, which the
    stubs declare, but they declare no ``__iter__``, so mypy would call ``tuple(dims)`` an error."""
    return tuple(int(dims[i]) for i in range(len(dims)))
