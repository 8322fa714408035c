"""The pinned-buffer CUDA layer (no TensorRT needed): gpu-marked, run where a GPU is lent.

Its bookkeeping inside the TensorRT backend (every handle released once) is tested without a
GPU in ``tests/trt/test_bookkeeping.py``.
"""

import importlib.util

import numpy as np
import pytest

from segdeploy.cuda import cuda_api
from segdeploy.errors import MissingDependencyError

APIS = [pytest.param(name, marks=[pytest.mark.gpu, pytest.mark.skipif(
    importlib.util.find_spec(module) is None, reason=f"{name} is not installed")])
    for name, module in (("cuda-python", "cuda"), ("pycuda", "pycuda"))]


@pytest.mark.parametrize("name", APIS)
def test_pinned_round_trip_through_the_device(name):
    cuda = cuda_api(name)
    stream = cuda.stream_create()
    host_in = cuda.pinned_empty((2, 3, 64, 80), np.float32)
    host_out = cuda.pinned_empty((2, 3, 64, 80), np.float32)
    host_in[...] = np.random.default_rng(0).standard_normal(host_in.shape)
    pointer = cuda.device_alloc(host_in.nbytes)
    start, end = cuda.event_create(), cuda.event_create()
    cuda.event_record(start, stream)
    cuda.copy_to_device(pointer, host_in, host_in.nbytes, stream)
    cuda.copy_to_host(host_out, pointer, host_in.nbytes, stream)
    cuda.event_record(end, stream)
    cuda.stream_sync(stream)
    np.testing.assert_array_equal(host_out, host_in)
    assert cuda.event_elapsed_ms(start, end) >= 0 and cuda.stream_handle(stream) != 0
    name_, capability = cuda.device_name_and_capability()
    assert name_ and capability[0] >= 3
    cuda.event_destroy(start)
    cuda.event_destroy(end)
    cuda.device_free(pointer)
    cuda.free_pinned(host_in)
    cuda.free_pinned(host_out)
    cuda.stream_destroy(stream)
    cuda.close()


@pytest.mark.parametrize("name", [api for api in APIS if api.values[0] == "cuda-python"])
def test_graph_capture_launch_and_destroy(name):
    """cuda-python only (PyCudaApi does not capture): a graph of two copies replays them."""
    cuda = cuda_api(name)
    stream = cuda.stream_create()
    host_in, host_out = cuda.pinned_empty((1024,), np.float32), cuda.pinned_empty((1024,), np.float32)
    pointer = cuda.device_alloc(host_in.nbytes)

    def enqueue() -> bool:
        cuda.copy_to_device(pointer, host_in, host_in.nbytes, stream)
        cuda.copy_to_host(host_out, pointer, host_in.nbytes, stream)
        return True

    host_in[...] = 1.0
    graph = cuda.capture_graph(stream, enqueue)
    assert graph is not None
    host_in[...] = 2.0
    cuda.launch_graph(graph, stream)
    cuda.stream_sync(stream)
    np.testing.assert_array_equal(host_out, host_in)
    cuda.graph_destroy(graph)
    cuda.device_free(pointer)
    cuda.free_pinned(host_in)
    cuda.free_pinned(host_out)
    cuda.stream_destroy(stream)
    cuda.close()


def test_no_cuda_package_is_a_missing_dependency():
    if importlib.util.find_spec("cuda") or importlib.util.find_spec("pycuda"):
        pytest.skip("a CUDA package is installed")
    with pytest.raises(MissingDependencyError, match="segdeploy\\[tensorrt\\]"):
        cuda_api()
