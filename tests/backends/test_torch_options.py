"""The torch backend's options on the CPU: bf16 autocast and channels_last agree with fp32; the
CUDA-only options are refused in one line before anything is loaded."""

import numpy as np
import pytest

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.backends.torch_backend import TorchBackend
from segdeploy.data.preprocess import prepare
from segdeploy.errors import BadInputError
from segdeploy.runtime.artifacts import BackendOptions, make_backend


def _logits(path, batch, **options):
    with make_backend(path, "torch", "cpu", BackendOptions(**options)) as backend:
        output = backend.infer(batch)
        assert backend.phase_timings_ms == {} and backend.cuda_runner is None
        return output


@pytest.fixture(scope="module")
def batch_and_reference(artifacts, scene_images):
    meta = read_artifact_meta(artifacts["torch"])
    batch = np.concatenate([prepare(image, meta.preprocess, meta.io)[0] for image in scene_images[:2]])
    return batch, _logits(artifacts["torch"], batch)


def test_channels_last_matches_the_default_layout(artifacts, batch_and_reference):
    batch, reference = batch_and_reference
    logits = _logits(artifacts["torch"], batch, channels_last=True)
    assert logits.flags.c_contiguous and logits.dtype == np.float32
    np.testing.assert_allclose(logits, reference, rtol=1e-4, atol=1e-4)


def test_bf16_autocast_on_the_cpu_keeps_the_masks(artifacts, batch_and_reference):
    batch, reference = batch_and_reference
    logits = _logits(artifacts["torch"], batch, autocast="bf16")
    assert logits.dtype == np.float32 and logits.shape == reference.shape
    assert not np.array_equal(logits, reference)  # bf16 really ran: 8 mantissa bits change the logits
    agreement = (logits.argmax(1) == reference.argmax(1)).mean()
    assert agreement >= 0.98, f"bf16 argmax agreement {agreement:.4f}"


@pytest.mark.parametrize("options, message", [
    ({"autocast": "fp16"}, "fp16 autocast needs --device cuda"),
    ({"cuda_graph": True}, "CUDA graphs need --device cuda"),
    ({"autocast": "fp8"}, "torch autocast must be one of off, fp16, bf16, got 'fp8'"),
])
def test_cuda_only_or_unknown_options_are_refused_on_construction(options, message):
    with pytest.raises(BadInputError, match=message):
        TorchBackend("unet_tiny", "cpu", **options)
