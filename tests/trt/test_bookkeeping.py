"""segdeploy's CUDA/TensorRT resource bookkeeping, driven by recording stand-ins.

These tests check segdeploy's bookkeeping, not CUDA and not TensorRT: ``TensorRTBackend``
runs against ``RecordingCuda`` (a ``CudaApi`` that hands out numbered handles and host
memory, and records every allocation, release and use of a stream, event, graph or buffer)
and a fake ``tensorrt`` module with the TensorRT 10 name-based engine/context calls the
backend makes. They run anywhere; what they prove is that every resource the backend
acquires is released exactly once and never used after release. Whether the real calls do
what the stand-ins assume is for the tensorrt-marked tests on a GPU machine.
"""

import itertools
import platform
import sys
import types
import weakref
from collections import Counter, defaultdict

import numpy as np
import pytest

from segdeploy.cuda import CudaApi, CudaError
from segdeploy.engine_manifest import EngineManifest, Environment, write_manifest
from segdeploy.errors import BadInputError
from segdeploy.fileio import sha256_file
from segdeploy.metadata import new_meta
from segdeploy.trt.backend import TensorRTBackend

CLASSES, MIN, MAX = 4, (1, 3, 16, 16), (2, 3, 64, 64)
GPU = ("Recording GPU", (9, 0))


class RecordingCuda(CudaApi):
    """Handles are numbers, device memory is host bytes; ``mistakes`` lists double releases and uses
    of released handles. ``fail_alloc_at``: the n-th ``device_alloc`` (from 1) raises CudaError."""

    name = "recording"
    supports_graphs = True

    def __init__(self, fail_alloc_at: int | None = None) -> None:
        self.live: dict[str, set[int]] = defaultdict(set)
        self.created, self.released = Counter(), Counter()
        self.mistakes: list[str] = []
        self.memory: dict[int, np.ndarray] = {}
        self.graphs: dict[int, object] = {}
        self.closed = 0
        self._numbers = itertools.count(0x1000)
        self._fail_alloc_at = fail_alloc_at

    def _make(self, kind: str, handle: int | None = None) -> int:
        handle = next(self._numbers) if handle is None else handle
        self.live[kind].add(handle)
        self.created[kind] += 1
        return handle

    def _use(self, kind: str, handle: int) -> int:
        if handle not in self.live[kind] or self.closed:
            self.mistakes.append(f"{kind} {handle:#x} used while not live")
        return handle

    def _release(self, kind: str, handle: int) -> None:
        self._use(kind, handle)
        self.live[kind].discard(handle)
        self.released[kind] += 1

    def pinned_empty(self, shape, dtype) -> np.ndarray:
        array = np.zeros(shape, dtype)
        self._make("pinned", id(array))
        return array

    def free_pinned(self, array) -> None:
        self._release("pinned", id(array))

    def device_alloc(self, nbytes: int) -> int:
        if self.created["device"] + 1 == self._fail_alloc_at:
            raise CudaError("out of memory (recorded)")
        pointer = self._make("device")
        self.memory[pointer] = np.zeros(nbytes, np.uint8)
        return pointer

    def device_free(self, pointer: int) -> None:
        self._release("device", pointer)
        self.memory.pop(pointer, None)

    def stream_create(self) -> int:
        return self._make("stream")

    def stream_handle(self, stream: int) -> int:
        return self._use("stream", stream)

    def stream_sync(self, stream: int) -> None:
        self._use("stream", stream)

    def stream_destroy(self, stream: int) -> None:
        self._release("stream", stream)

    def copy_to_device(self, pointer, host, nbytes, stream) -> None:
        self._use("stream", stream)
        self.memory[self._use("device", pointer)][:nbytes] = host.reshape(-1).view(np.uint8)[:nbytes]

    def copy_to_host(self, host, pointer, nbytes, stream) -> None:
        self._use("stream", stream)
        host.reshape(-1).view(np.uint8)[:nbytes] = self.memory[self._use("device", pointer)][:nbytes]

    def event_create(self) -> int:
        return self._make("event")

    def event_destroy(self, event: int) -> None:
        self._release("event", event)

    def event_record(self, event: int, stream: int) -> None:
        self._use("event", event), self._use("stream", stream)

    def event_elapsed_ms(self, start: int, end: int) -> float:
        self._use("event", start), self._use("event", end)
        return 0.25

    def device_name_and_capability(self):
        return GPU

    def capture_graph(self, stream, enqueue) -> int:
        enqueue()  # as CudaPythonApi: once outside the capture
        graph = self._make("graph")
        self.graphs[graph] = enqueue
        return graph

    def launch_graph(self, graph: int, stream: int) -> None:
        self._use("stream", stream)
        self.graphs[self._use("graph", graph)]()

    def graph_destroy(self, graph: int) -> None:
        self._release("graph", graph)
        self.graphs.pop(graph, None)

    def close(self) -> None:
        self.closed += 1


IO_MODE = types.SimpleNamespace(INPUT="input", OUTPUT="output")


class FakeContext:
    """An execution context whose "engine" writes channel 0 of the input times 1..CLASSES, in the
    memory of the newest RecordingCuda."""

    def __init__(self, apis: list[RecordingCuda]) -> None:
        self.apis, self.shapes, self.addresses = apis, {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)

    def get_tensor_shape(self, name):
        n, _, h, w = self.shapes["input"]
        return (n, 3, h, w) if name == "input" else (n, CLASSES, h, w)

    def set_tensor_address(self, name, pointer):
        self.addresses[name] = pointer

    def execute_async_v3(self, stream_handle):
        memory = self.apis[-1].memory
        n, _, h, w = self.shapes["input"]
        pixels = memory[self.addresses["input"]][: n * 3 * h * w * 4].view(np.float32).reshape(n, 3, h, w)
        logits = pixels[:, :1] * np.arange(1, CLASSES + 1, dtype=np.float32)[None, :, None, None]
        memory[self.addresses["logits"]][: logits.nbytes] = logits.reshape(-1).view(np.uint8)
        return True


class FakeEngine:
    """TensorRT 10's name-based engine calls for one float32 input and one logits output."""

    num_io_tensors = 2

    def __init__(self, apis: list[RecordingCuda]) -> None:
        self.apis = apis

    def get_tensor_name(self, index):
        return ("input", "logits")[index]

    def get_tensor_mode(self, name):
        return IO_MODE.INPUT if name == "input" else IO_MODE.OUTPUT

    def get_tensor_shape(self, name):
        return (-1, 3, -1, -1) if name == "input" else (-1, CLASSES, -1, -1)

    def get_tensor_dtype(self, name):
        return np.float32

    def get_tensor_profile_shape(self, name, profile):
        return [MIN, (1, 3, 32, 32), MAX]

    def create_execution_context(self):
        return FakeContext(self.apis)


def _fake_tensorrt(apis: list[RecordingCuda], deserializes: bool = True) -> types.ModuleType:
    """A ``tensorrt`` module with the names the backend calls; ``deserializes=False``: the plan is refused."""

    class Runtime:
        def __init__(self, logger):
            self.engine_host_code_allowed = False

        def deserialize_cuda_engine(self, plan):
            return FakeEngine(apis) if deserializes else None

    trt = types.ModuleType("tensorrt")
    trt.__version__ = "10.9.0.34"
    trt.Logger = type("Logger", (), {"WARNING": 2, "__init__": lambda self, severity: None})
    trt.Runtime = Runtime
    trt.TensorIOMode = IO_MODE
    trt.nptype = np.dtype
    return trt


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "m.engine"
    path.write_bytes(b"a recorded plan")
    here = Environment("10.9.0.34", "12.8", *GPU, platform.system().lower(), platform.machine())
    write_manifest(EngineManifest(new_meta("unet_tiny", {}, CLASSES).to_dict(), here, [], "fp32", "-",
                                  sha256_file(path), 1.0, False, "none"), path)
    return path


def _install(monkeypatch, deserializes: bool = True, fail_alloc_at: int | None = None) -> list[RecordingCuda]:
    """Put the fake tensorrt in sys.modules and make every activation get a fresh RecordingCuda."""
    apis: list[RecordingCuda] = []

    def cuda_api():
        apis.append(RecordingCuda(fail_alloc_at))
        return apis[-1]

    monkeypatch.setitem(sys.modules, "tensorrt", _fake_tensorrt(apis, deserializes))
    monkeypatch.setattr("segdeploy.trt.backend.cuda_api", cuda_api)
    return apis


def _assert_all_released_once(api: RecordingCuda) -> None:
    assert api.mistakes == []
    assert api.created == api.released and not any(api.live.values()), (api.created, api.released)
    assert api.closed == 1


def test_bookkeeping_every_resource_released_once_over_shapes_and_graphs(monkeypatch, engine):
    apis = _install(monkeypatch)
    backend = TensorRTBackend(engine, cuda_graph=True)
    shapes = [(1, 3, 32, 32), (1, 3, 32, 32), (2, 3, 64, 48), (1, 3, 16, 16)]  # 3 distinct in a row: 3 graphs
    for _ in range(2):  # a closed backend activates again with fresh resources
        with backend:
            context = weakref.ref(backend._context)
            for shape in shapes:
                batch = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
                expected = batch[:, :1] * np.arange(1, CLASSES + 1, dtype=np.float32)[None, :, None, None]
                np.testing.assert_array_equal(backend.infer(batch), expected)
            assert backend.phase_timings_ms == {"h2d": 0.25, "compute": 0.25, "d2h": 0.25}
        assert context() is None, "the closed backend still references its TensorRT context"
    assert len(apis) == 2
    for api in apis:
        _assert_all_released_once(api)
        assert api.created == Counter(pinned=2, device=2, stream=1, event=4, graph=3)


@pytest.mark.parametrize("failure", ["deserialize", "second-allocation"])
def test_bookkeeping_a_failed_activation_releases_what_it_acquired(monkeypatch, engine, failure):
    apis = _install(monkeypatch, deserializes=failure != "deserialize",
                    fail_alloc_at=2 if failure == "second-allocation" else None)
    backend = TensorRTBackend(engine)
    with pytest.raises(BadInputError if failure == "deserialize" else CudaError):
        backend.activate()
    assert not backend.is_active
    _assert_all_released_once(apis[0])


def test_the_profile_range_is_checked_in_the_base_class_wording(monkeypatch, engine):
    apis = _install(monkeypatch)
    with TensorRTBackend(engine) as backend:
        with pytest.raises(BadInputError) as caught:
            backend.infer(np.zeros((3, 3, 32, 32), np.float32))
        assert str(caught.value) == ("input 'input' takes float32 1x3x16x16 to 2x3x64x64, got float32 3x3x32x32: "
                                     "outside the engine's optimisation profile (rebuild with wider "
                                     "--min-shape/--max-shape)")
        with pytest.raises(BadInputError, match="dtype uint8, not float32"):
            backend.infer(np.zeros((1, 3, 32, 32), np.uint8))
    _assert_all_released_once(apis[0])
