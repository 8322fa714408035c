"""The torch backend on CUDA (``gpu``): pinned staging, its own stream, CUDA graphs, autocast,
channels_last and phase timings, each checked against the CPU reference."""

import numpy as np
import pytest

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.backends.base import DEVICE_PHASES
from segdeploy.backends.torch_cuda import MAX_SHAPES
from segdeploy.data.preprocess import prepare
from segdeploy.runtime.artifacts import BackendOptions, make_backend

pytestmark = pytest.mark.gpu

# float32 on the GPU (TF32 off for gpu tests: conftest) differs from the CPU in rounding only.
# fp16/bf16 change the logits; the masks must stay.
FP32_TOLERANCE = {"rtol": 2e-3, "atol": 2e-3}
MIN_AGREEMENT = {"off": 0.999, "fp16": 0.99, "bf16": 0.98}


@pytest.fixture(scope="module")
def batch(artifacts, scene_images):
    meta = read_artifact_meta(artifacts["torch"])
    return np.concatenate([prepare(image, meta.preprocess, meta.io)[0] for image in scene_images[:2]])


@pytest.fixture(scope="module")
def cpu_logits(artifacts, batch):
    with make_backend(artifacts["torch"], "torch", "cpu", BackendOptions()) as backend:
        return backend.infer(batch)


def _run(artifacts, batch, calls=1, **options):
    with make_backend(artifacts["torch"], "torch", "cuda", BackendOptions(**options)) as backend:
        outputs = [backend.infer(batch) for _ in range(calls)]
        return outputs, backend.phase_timings_ms, backend.cuda_runner


def test_fp32_equals_the_cpu_reference(artifacts, batch, cpu_logits):
    (logits,), _, _ = _run(artifacts, batch)
    assert logits.dtype == np.float32 and logits.shape == cpu_logits.shape
    np.testing.assert_allclose(logits, cpu_logits, **FP32_TOLERANCE)


@pytest.mark.parametrize("autocast", ["fp16", "bf16"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_autocast_and_channels_last_keep_the_masks(artifacts, batch, cpu_logits, autocast, channels_last):
    (logits,), _, _ = _run(artifacts, batch, autocast=autocast, channels_last=channels_last)
    assert logits.dtype == np.float32 and logits.flags.c_contiguous
    agreement = (logits.argmax(1) == cpu_logits.argmax(1)).mean()
    assert agreement >= MIN_AGREEMENT[autocast], f"{autocast} argmax agreement {agreement:.4f}"


@pytest.mark.parametrize("autocast", ["off", "fp16"])
def test_graph_replay_equals_eager(artifacts, batch, autocast):
    (eager,), _, _ = _run(artifacts, batch, autocast=autocast)
    replays, _, runner = _run(artifacts, batch, calls=3, autocast=autocast, cuda_graph=True)
    assert runner.graphs_captured == 1  # one capture, two more replays
    for replay in replays:
        np.testing.assert_allclose(replay, eager, rtol=1e-5, atol=1e-5)


def test_pinned_buffers_are_made_once_per_shape(artifacts, batch):
    import gc

    import torch

    gc.collect()  # what earlier tests left to the collector must not be freed between the two readings

    with make_backend(artifacts["torch"], "torch", "cuda", BackendOptions(cuda_graph=True)) as backend:
        runner = backend.cuda_runner
        backend.infer(batch)
        backend.infer(batch[:1])
        made, allocated = runner.pinned_buffers_made, torch.cuda.memory_allocated()
        assert made == 4  # input and output, for each of the two shapes
        for _ in range(5):
            backend.infer(batch)
            backend.infer(batch[:1])
        assert runner.pinned_buffers_made == made and runner.graphs_captured == 2
        assert torch.cuda.memory_allocated() == allocated  # replays allocate nothing on the device either


def test_shapes_beyond_the_limit_release_the_oldest(artifacts, batch):
    with make_backend(artifacts["torch"], "torch", "cuda", BackendOptions()) as backend:
        for count in range(1, MAX_SHAPES + 2):
            backend.infer(np.concatenate([batch[:1]] * count))
        runner = backend.cuda_runner
        assert len(runner._slots) == MAX_SHAPES and runner._slots.made == MAX_SHAPES + 1
        backend.infer(batch[:1])  # the first shape was released: it is made again
        assert runner._slots.made == MAX_SHAPES + 2


def test_phase_timings_cover_the_three_device_phases(artifacts, batch):
    _, phases, _ = _run(artifacts, batch, calls=2)
    assert tuple(phases) == DEVICE_PHASES and all(ms > 0 for ms in phases.values())


def test_close_drops_the_runner_its_buffers_and_graphs(artifacts, batch):
    import gc
    import weakref

    import torch

    with make_backend(artifacts["torch"], "torch", "cuda", BackendOptions(cuda_graph=True)) as backend:
        backend.infer(batch)
        runner = weakref.ref(backend.cuda_runner)
        slot = weakref.ref(backend.cuda_runner._slots.get(batch.shape))
        active = torch.cuda.memory_allocated()
    gc.collect()
    torch.cuda.synchronize()
    assert runner() is None and slot() is None
    assert torch.cuda.memory_allocated() < active  # weights, buffers and the graph's pool are gone
