import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segdeploy.data.preprocess import (
    normalize,
    plan_placement,
    postprocess,
    prepare,
    preprocess,
)
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.metadata import ChannelOrder, Preprocess, ResizePolicy, TensorIO


def _blocky_labels(height, width, classes=4, seed=0, block=24):
    # Blocks larger than the 3x downscale (360x480 -> 120x160) so the round trip measures
    # alignment, not the resolution the downscale loses.
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, classes, (height // block + 1, width // block + 1), dtype=np.uint8)
    return np.kron(coarse, np.ones((block, block), np.uint8))[:height, :width]


def _perfect_logits(labels, placement, classes=4):
    """Logits a perfect model would give in input space: the labels pushed through the placement."""
    import cv2

    content_h, content_w = placement.content_size
    inside = cv2.resize(labels, (content_w, content_h), interpolation=cv2.INTER_NEAREST_EXACT)
    full = np.zeros(placement.input_size, np.uint8)
    full[:content_h, :content_w] = inside
    return np.eye(classes, dtype=np.float32)[full].transpose(2, 0, 1)


@pytest.mark.parametrize("policy", list(ResizePolicy))
@pytest.mark.parametrize("size", [(97, 131), (360, 480), (33, 200)])
def test_mask_round_trip_for_each_policy(policy, size):
    pre = Preprocess(resize_policy=policy, eval_size=(120, 160), divisor=32)
    image = np.zeros((*size, 3), np.uint8)
    batch, placement = preprocess(image, pre)
    assert batch.shape == (1, 3, *placement.input_size) and batch.dtype == np.float32
    if policy == ResizePolicy.KEEP:
        assert all(s % 32 == 0 for s in placement.input_size)
    labels = _blocky_labels(*size)
    restored = postprocess(_perfect_logits(labels, placement), placement)
    assert restored.shape == size and restored.dtype == np.uint8
    agreement = (restored == labels).mean()
    assert agreement == 1.0 if policy == ResizePolicy.KEEP else agreement > 0.99


def test_normalize_follows_the_contract():
    pre = Preprocess(channel_order=ChannelOrder.RGB, pixel_scale=1 / 255, mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.2))
    image = np.zeros((1, 2, 2, 3), np.uint8)
    image[..., 0], image[..., 2] = 255, 51  # BGR: blue 255, red 51
    out = normalize(image, pre)
    np.testing.assert_allclose(out[0, :, 0, 0], [(0.2 - 0.1) / 0.5, (0 - 0.2) / 0.25, (1 - 0.3) / 0.2], rtol=1e-6)
    bgr = normalize(image, Preprocess(channel_order=ChannelOrder.BGR, mean=(0, 0, 0), std=(1, 1, 1)))
    np.testing.assert_allclose(bgr[0, :, 0, 0], [1.0, 0.0, 0.2], rtol=1e-6)


def test_gray_and_rgba_are_converted_other_dtypes_refused():
    pre = Preprocess(eval_size=(16, 16))
    assert preprocess(np.zeros((10, 12), np.uint8), pre)[0].shape == (1, 3, 16, 16)
    assert preprocess(np.zeros((10, 12, 4), np.uint8), pre)[0].shape == (1, 3, 16, 16)
    with pytest.raises(BadInputError, match="float32"):
        preprocess(np.zeros((10, 12, 3), np.float32), pre)


@settings(max_examples=40, deadline=None)
@given(height=st.integers(1, 300), width=st.integers(1, 300), policy=st.sampled_from(list(ResizePolicy)),
       eval_h=st.integers(8, 64), eval_w=st.integers(8, 64), divisor=st.sampled_from([1, 8, 32]))
def test_placement_properties(height, width, policy, eval_h, eval_w, divisor):
    pre = Preprocess(resize_policy=policy, eval_size=(eval_h, eval_w), divisor=divisor)
    placement = plan_placement((height, width), pre)
    assert all(c <= i for c, i in zip(placement.content_size, placement.input_size))
    assert min(placement.content_size) >= 1
    if policy != ResizePolicy.KEEP:
        assert placement.input_size == (eval_h, eval_w)
    else:
        assert all(i % divisor == 0 and i - o < divisor for i, o in zip(placement.input_size, (height, width)))
    mask = postprocess(np.zeros(placement.input_size, np.uint8), placement)
    assert mask.shape == (height, width)


IMAGE_SHAPES = st.tuples(st.integers(1, 120), st.integers(1, 120), st.sampled_from([None, 1, 3, 4]))


@settings(max_examples=50, deadline=None)
@given(shape=IMAGE_SHAPES, policy=st.sampled_from(list(ResizePolicy)),
       io=st.sampled_from([TensorIO(), TensorIO(input_dtype="uint8"),
                           TensorIO(input_dtype="uint8", input_layout="NHWC")]),
       classes=st.integers(1, 12), seed=st.integers(0, 1000))
def test_prepare_and_postprocess_any_image(shape, policy, io, classes, seed):
    """Any size and channel count: the graph input matches the contract, the mask the image size."""
    height, width, channels = shape
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width) if channels is None else (height, width, channels), dtype=np.uint8)
    pre = Preprocess(resize_policy=policy, eval_size=(48, 64), divisor=16)
    batch, placement = prepare(image, pre, io)
    expected_dtype = np.float32 if io.input_dtype == "float32" else np.uint8
    assert batch.dtype == expected_dtype and batch.shape[0] == 1
    spatial = batch.shape[1:3] if io.input_layout == "NHWC" else batch.shape[2:]
    assert tuple(spatial) == placement.input_size and 3 in (batch.shape[1], batch.shape[3])
    logits = rng.standard_normal((classes, *placement.input_size)).astype(np.float32)
    mask = postprocess(logits, placement)
    assert mask.shape == (height, width) and mask.dtype == np.uint8 and mask.max() < classes


@settings(max_examples=25, deadline=None)
@given(dtype=st.sampled_from([np.uint16, np.int8, np.float32, np.float64, np.int32]), side=st.integers(1, 20))
def test_non_uint8_images_are_refused(dtype, side):
    with pytest.raises(BadInputError, match="8-bit"):
        preprocess(np.zeros((side, side, 3), dtype), Preprocess())


def test_nan_logits_fail_instead_of_class_zero():
    placement = plan_placement((4, 4), Preprocess(resize_policy=ResizePolicy.KEEP, divisor=1))
    logits = np.zeros((3, 4, 4), np.float32)
    logits[1, 2, 2] = np.nan
    with pytest.raises(CheckFailedError, match="NaN"):
        postprocess(logits, placement)
