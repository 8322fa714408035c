"""The small CUDA layer the TensorRT backend needs, apart from TensorRT (``gpu``-marked tests).

One interface (pinned host arrays, device buffers, async copies, a stream, events, graph
capture) with two implementations: cuda-python (``cuda.bindings.runtime``, what NVIDIA's
samples use since TensorRT 10.14, and the only one with graph capture) and PyCUDA (on the
device's primary context, which TensorRT and PyTorch share; never ``pycuda.autoinit``).
``cuda_api()`` returns whichever is installed, cuda-python first.

Ownership: what a create/alloc/capture call returns is released by its one matching
destroy/free call; then ``close()`` releases what the API object holds (PyCUDA: its context).

Neither package ships type information: ``CudaRuntime`` declares the cuda-python calls made here,
so that mypy checks them (``[tool.mypy]`` in pyproject.toml); PyCUDA's objects stay untyped.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from segdeploy.errors import MissingDependencyError, SegdeployError


class CudaError(SegdeployError):
    """A CUDA call failed."""


class CudaApi(ABC):
    """One device (0); streams, events and graphs are opaque handles of the API object that made them."""

    name = "cuda"
    supports_graphs = False

    @abstractmethod
    def pinned_empty(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray: ...

    @abstractmethod
    def free_pinned(self, array: np.ndarray) -> None: ...

    @abstractmethod
    def device_alloc(self, nbytes: int) -> int: ...

    @abstractmethod
    def device_free(self, pointer: int) -> None: ...

    @abstractmethod
    def stream_create(self): ...

    @abstractmethod
    def stream_handle(self, stream) -> int:
        """The raw ``cudaStream_t`` as an int (what ``execute_async_v3`` takes)."""

    @abstractmethod
    def stream_sync(self, stream) -> None: ...

    @abstractmethod
    def stream_destroy(self, stream) -> None: ...

    @abstractmethod
    def copy_to_device(self, pointer: int, host: np.ndarray, nbytes: int, stream) -> None: ...

    @abstractmethod
    def copy_to_host(self, host: np.ndarray, pointer: int, nbytes: int, stream) -> None: ...

    @abstractmethod
    def event_create(self): ...

    @abstractmethod
    def event_destroy(self, event) -> None: ...

    @abstractmethod
    def event_record(self, event, stream) -> None: ...

    @abstractmethod
    def event_elapsed_ms(self, start, end) -> float: ...

    @abstractmethod
    def device_name_and_capability(self) -> tuple[str, tuple[int, int]]: ...

    def capture_graph(self, stream, enqueue: Callable[[], bool]) -> object | None:
        """Capture ``enqueue()`` on ``stream`` into an executable graph; None where unsupported or refused."""
        return None

    def launch_graph(self, graph, stream) -> None:
        raise CudaError(f"{self.name} cannot launch CUDA graphs")

    def graph_destroy(self, graph) -> None:
        """Destroy an executable graph that ``capture_graph`` returned."""
        raise CudaError(f"{self.name} has no CUDA graphs to destroy")

    @abstractmethod
    def close(self) -> None:
        """Release what this API object holds itself, after every stream, event, graph and buffer."""


class _DeviceProperties(Protocol):
    name: bytes | str  # a char[256], accepted in either form (device_name_and_capability decodes bytes)
    major: int
    minor: int


class _Flags(Protocol):
    """One of cuda-python's enum classes, read by member name (cudaError_t.cudaSuccess, ...)."""

    def __getattr__(self, member: str) -> object: ...


class CudaRuntime(Protocol):
    """The calls of ``cuda.bindings.runtime`` this module makes, which ships no type information.

    Each call returns a tuple ``(cudaError_t, *values)`` in the order of the C API's output
    parameters; handles (streams, events, graphs) are cuda-python objects, typed ``object`` here
    so that they are only passed back, never used otherwise. Arguments are positional, as called.
    """

    cudaError_t: _Flags
    cudaMemcpyKind: _Flags
    cudaStreamCaptureMode: _Flags

    def cudaMallocHost(self, size: int, /) -> tuple[object, int]: ...
    def cudaFreeHost(self, ptr: int, /) -> tuple[object]: ...
    def cudaMalloc(self, size: int, /) -> tuple[object, int]: ...
    def cudaFree(self, dev_ptr: int, /) -> tuple[object]: ...
    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind: object, stream: object, /) -> tuple[object]: ...
    def cudaStreamCreate(self) -> tuple[object, object]: ...
    def cudaStreamSynchronize(self, stream: object, /) -> tuple[object]: ...
    def cudaStreamDestroy(self, stream: object, /) -> tuple[object]: ...
    def cudaEventCreate(self) -> tuple[object, object]: ...
    def cudaEventDestroy(self, event: object, /) -> tuple[object]: ...
    def cudaEventRecord(self, event: object, stream: object, /) -> tuple[object]: ...
    def cudaEventSynchronize(self, event: object, /) -> tuple[object]: ...
    def cudaEventElapsedTime(self, start: object, end: object, /) -> tuple[object, float]: ...
    def cudaGetDeviceProperties(self, device: int, /) -> tuple[object, _DeviceProperties]: ...
    def cudaStreamBeginCapture(self, stream: object, mode: object, /) -> tuple[object]: ...
    def cudaStreamEndCapture(self, stream: object, /) -> tuple[object, object | None]: ...
    def cudaGraphInstantiate(self, graph: object, flags: int, /) -> tuple[object, object]: ...
    def cudaGraphLaunch(self, graph_exec: object, stream: object, /) -> tuple[object]: ...
    def cudaGraphDestroy(self, graph: object, /) -> tuple[object]: ...
    def cudaGraphExecDestroy(self, graph_exec: object, /) -> tuple[object]: ...
    def cudaGetLastError(self) -> tuple[object]: ...
    def cudaRuntimeGetVersion(self) -> tuple[object, int]: ...


def cuda_runtime() -> CudaRuntime:
    """``cuda.bindings.runtime``, typed by ``CudaRuntime`` (ImportError where cuda-python is absent)."""
    from cuda.bindings import runtime

    return runtime


_Value = TypeVar("_Value")


class CudaPythonApi(CudaApi):
    name = "cuda-python"
    supports_graphs = True

    def __init__(self) -> None:
        self._rt = cuda_runtime()

    @overload
    def _check(self, result: tuple[object]) -> None: ...

    @overload
    def _check(self, result: tuple[object, _Value]) -> _Value: ...

    def _check(self, result: tuple[object, ...]) -> Any:
        """The call's one value (None when it has none); CudaError unless it returned cudaSuccess."""
        error, *values = result
        if error != self._rt.cudaError_t.cudaSuccess:
            raise CudaError(f"CUDA error {error}")
        return values[0] if len(values) == 1 else (values or None)

    def pinned_empty(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
        nbytes = max(1, int(np.prod(shape)) * np.dtype(dtype).itemsize)
        pointer = self._check(self._rt.cudaMallocHost(nbytes))
        raw = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_uint8)), (nbytes,))
        return raw[: int(np.prod(shape)) * np.dtype(dtype).itemsize].view(dtype).reshape(shape)

    def free_pinned(self, array: np.ndarray) -> None:
        self._check(self._rt.cudaFreeHost(array.ctypes.data))

    def device_alloc(self, nbytes: int) -> int:
        return int(self._check(self._rt.cudaMalloc(max(1, nbytes))))

    def device_free(self, pointer: int) -> None:
        self._check(self._rt.cudaFree(pointer))

    def stream_create(self):
        return self._check(self._rt.cudaStreamCreate())

    def stream_handle(self, stream) -> int:
        from cuda.bindings.utils import get_cuda_native_handle

        return int(get_cuda_native_handle(stream))

    def stream_sync(self, stream) -> None:
        self._check(self._rt.cudaStreamSynchronize(stream))

    def stream_destroy(self, stream) -> None:
        self._check(self._rt.cudaStreamDestroy(stream))

    def copy_to_device(self, pointer: int, host: np.ndarray, nbytes: int, stream) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpyAsync(pointer, host.ctypes.data, nbytes, kind, stream))

    def copy_to_host(self, host: np.ndarray, pointer: int, nbytes: int, stream) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpyAsync(host.ctypes.data, pointer, nbytes, kind, stream))

    def event_create(self):
        return self._check(self._rt.cudaEventCreate())

    def event_destroy(self, event) -> None:
        self._check(self._rt.cudaEventDestroy(event))

    def event_record(self, event, stream) -> None:
        self._check(self._rt.cudaEventRecord(event, stream))

    def event_elapsed_ms(self, start, end) -> float:
        self._check(self._rt.cudaEventSynchronize(end))
        return float(self._check(self._rt.cudaEventElapsedTime(start, end)))

    def device_name_and_capability(self) -> tuple[str, tuple[int, int]]:
        properties = self._check(self._rt.cudaGetDeviceProperties(0))
        name = properties.name.decode() if isinstance(properties.name, bytes) else str(properties.name)
        return name.rstrip("\x00"), (int(properties.major), int(properties.minor))

    def capture_graph(self, stream, enqueue: Callable[[], bool]) -> object | None:
        """As trtexec: enqueue once outside capture, capture one enqueue; on refusal clear the error."""
        rt = self._rt
        enqueue()
        self.stream_sync(stream)
        self._check(rt.cudaStreamBeginCapture(stream, rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal))
        enqueued = enqueue()
        error, graph = rt.cudaStreamEndCapture(stream)  # always end the capture
        if not enqueued or error != rt.cudaError_t.cudaSuccess:
            if graph is not None:
                rt.cudaGraphDestroy(graph)
            rt.cudaGetLastError()
            return None
        executable = self._check(rt.cudaGraphInstantiate(graph, 0))
        self._check(rt.cudaGraphDestroy(graph))
        return executable

    def launch_graph(self, graph, stream) -> None:
        self._check(self._rt.cudaGraphLaunch(graph, stream))

    def graph_destroy(self, graph) -> None:
        self._check(self._rt.cudaGraphExecDestroy(graph))

    def close(self) -> None:
        """Nothing to release: the runtime API owns the primary context it makes current."""


class PyCudaApi(CudaApi):
    """PyCUDA on device 0's primary context (shared with TensorRT, as pycuda.autoprimaryctx does),
    pushed by the constructor and popped by ``close()`` on the same thread.

    PyCUDA's ``Stream``/``Event`` have no destroy method; their destructors call ``cuStreamDestroy``/
    ``cuEventDestroy`` when the last reference goes. This object keeps the only reference (callers get
    its ``id`` as key), so ``*_destroy`` dropping it destroys the stream or event within that call
    (CPython's reference counting), while the context is still pushed.
    """

    name = "pycuda"

    def __init__(self) -> None:
        import pycuda.driver as driver

        driver.init()
        self._driver = driver
        self._device = driver.Device(0)
        self._context = _primary_context(0)
        self._context.push()
        # PyCUDA ships no type information: its DeviceAllocation, Stream and Event objects are Any here.
        self._allocations: dict[int, Any] = {}
        self._owned: dict[int, Any] = {}  # streams and events by key; see the class docstring

    def _own(self, thing: object) -> int:
        self._owned[id(thing)] = thing
        return id(thing)

    def pinned_empty(self, shape: tuple[int, ...], dtype: npt.DTypeLike) -> np.ndarray:
        return self._driver.pagelocked_empty(shape, dtype)

    def free_pinned(self, array: np.ndarray) -> None:
        base = array.base if array.base is not None else array
        if hasattr(base, "free"):
            base.free()

    def device_alloc(self, nbytes: int) -> int:
        allocation = self._driver.mem_alloc(max(1, nbytes))
        self._allocations[int(allocation)] = allocation
        return int(allocation)

    def device_free(self, pointer: int) -> None:
        self._allocations.pop(pointer).free()

    def stream_create(self) -> int:
        return self._own(self._driver.Stream())

    def stream_handle(self, stream: int) -> int:
        return int(self._owned[stream].handle)

    def stream_sync(self, stream: int) -> None:
        self._owned[stream].synchronize()

    def stream_destroy(self, stream: int) -> None:
        self._owned.pop(stream).synchronize()  # the last reference: ~Stream destroys it here

    def copy_to_device(self, pointer: int, host: np.ndarray, nbytes: int, stream: int) -> None:
        self._driver.memcpy_htod_async(pointer, host.reshape(-1).view(np.uint8)[:nbytes], self._owned[stream])

    def copy_to_host(self, host: np.ndarray, pointer: int, nbytes: int, stream: int) -> None:
        self._driver.memcpy_dtoh_async(host.reshape(-1).view(np.uint8)[:nbytes], pointer, self._owned[stream])

    def event_create(self) -> int:
        return self._own(self._driver.Event())

    def event_destroy(self, event: int) -> None:
        del self._owned[event]  # the last reference: ~Event destroys it here

    def event_record(self, event: int, stream: int) -> None:
        self._owned[event].record(self._owned[stream])

    def event_elapsed_ms(self, start: int, end: int) -> float:
        self._owned[end].synchronize()
        return float(self._owned[start].time_till(self._owned[end]))

    def device_name_and_capability(self) -> tuple[str, tuple[int, int]]:
        return self._device.name(), tuple(self._device.compute_capability())

    def close(self) -> None:
        """Pop the context pushed by the constructor (once; later calls do nothing)."""
        if self._context is not None:
            self._context.pop()
            self._context = None


@functools.cache
def _primary_context(ordinal: int):
    """Retained once per process: PyCUDA releases a dropped primary context by pushing it and calling
    ``cuDevicePrimaryCtxRelease``, which never pops (``cuda.hpp``: ``primary_context::detach_internal``),
    so a release per deactivation would leave one entry on the thread's context stack each time."""
    import pycuda.driver as driver

    return driver.Device(ordinal).retain_primary_context()


def cuda_api(prefer: str | None = None) -> CudaApi:
    """cuda-python if installed (or ``prefer="pycuda"``), else PyCUDA; MissingDependencyError if neither."""
    available = {"cuda-python": importlib.util.find_spec("cuda") is not None and _has_bindings(),
                 "pycuda": importlib.util.find_spec("pycuda") is not None}
    order = [prefer] if prefer else ["cuda-python", "pycuda"]
    for name in order:
        if available.get(name):
            try:
                return CudaPythonApi() if name == "cuda-python" else PyCudaApi()
            except Exception as exc:  # no driver, no device: the import works but CUDA does not
                raise MissingDependencyError(f"{name} is installed but CUDA is not usable here: "
                                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc
    raise MissingDependencyError("neither cuda-python nor pycuda is installed; pip install 'segdeploy[tensorrt]' "
                                 "(NVIDIA GPU and driver required)")


def _has_bindings() -> bool:
    try:
        return importlib.util.find_spec("cuda.bindings") is not None
    except ModuleNotFoundError:
        return False
