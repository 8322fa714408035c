"""Models that predict below the input resolution (output stride 4, as SegFormer): masks and logits
come back aligned with the image under every resize policy, checked against torch's interpolation."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from segdeploy.artifact_meta import attach_metadata
from segdeploy.data.preprocess import prepare
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.metadata import OutputKind, Preprocess, ResizePolicy, TensorIO, new_meta
from segdeploy.runtime.segmenter import Segmenter

STRIDE, CLASSES = 4, 5
PREPROCESS = {  # eval sizes not divisible by the stride: ceil(66 / 4) = 17 rows of logits
    ResizePolicy.STRETCH: Preprocess(resize_policy=ResizePolicy.STRETCH, eval_size=(66, 82)),
    ResizePolicy.LETTERBOX: Preprocess(resize_policy=ResizePolicy.LETTERBOX, eval_size=(66, 82)),
    ResizePolicy.KEEP: Preprocess(resize_policy=ResizePolicy.KEEP, eval_size=(64, 80), divisor=32),
}


def _stride4_onnx(path, pre: Preprocess, class_map: bool) -> None:
    """input -> 4x4 average pool (ceil mode) -> 1x1 conv to CLASSES logits [-> argmax]: stride 4."""
    weights = np.random.default_rng(0).standard_normal((CLASSES, 3, 1, 1)).astype(np.float32)
    nodes = [helper.make_node("AveragePool", ["input"], ["pooled"], kernel_shape=[STRIDE, STRIDE],
                              strides=[STRIDE, STRIDE], ceil_mode=1),
             helper.make_node("Conv", ["pooled", "w"], ["logits"])]
    output = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", CLASSES, "h", "w"])
    if class_map:
        nodes.append(helper.make_node("ArgMax", ["logits"], ["mask"], axis=1, keepdims=0))
        output = helper.make_tensor_value_info("mask", TensorProto.INT64, ["n", "h", "w"])
    graph = helper.make_graph(nodes, "stride4", [helper.make_tensor_value_info(
        "input", TensorProto.FLOAT, ["n", 3, "H", "W"])], [output], [numpy_helper.from_array(weights, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    io = TensorIO(output_name=output.name, output=OutputKind.MASK if class_map else OutputKind.LOGITS,
                  output_stride=STRIDE)
    onnx.save(attach_metadata(model, new_meta("stride4", {}, CLASSES, preprocess=pre, io=io)), path)


def _expected_mask(segmenter: Segmenter, image: np.ndarray) -> np.ndarray:
    """torch's upsampling of the raw output to the input size, cropped, argmax, nearest to the image size."""
    batch, placement = prepare(image, segmenter.meta.preprocess, segmenter.meta.io)
    output = torch.from_numpy(segmenter.run(batch).astype(np.float32))
    if output.ndim == 3:  # class ids: nearest at pixel centres
        classes = F.interpolate(output[:, None], size=placement.input_size, mode="nearest-exact")[0, 0]
    else:
        classes = F.interpolate(output, size=placement.input_size, mode="bilinear", align_corners=False)[0].argmax(0)
    height, width = placement.content_size
    cropped = classes[:height, :width].numpy().astype(np.uint8)
    return cv2.resize(cropped, image.shape[1::-1], interpolation=cv2.INTER_NEAREST_EXACT)


def _expected_logits(segmenter: Segmenter, image: np.ndarray) -> np.ndarray:
    """torch: the raw logits bilinearly to the input size, cropped, bilinearly to the image size."""
    batch, placement = prepare(image, segmenter.meta.preprocess, segmenter.meta.io)
    output = torch.from_numpy(segmenter.run(batch))
    full = F.interpolate(output, size=placement.input_size, mode="bilinear", align_corners=False)
    height, width = placement.content_size
    return F.interpolate(full[:, :, :height, :width], size=image.shape[:2], mode="bilinear",
                         align_corners=False)[0].numpy()


@pytest.mark.parametrize("class_map", [False, True], ids=["logits", "class_map"])
@pytest.mark.parametrize("policy", list(PREPROCESS))
def test_masks_align_with_the_upsampled_output(tmp_path, policy, class_map):
    _stride4_onnx(tmp_path / "m.onnx", PREPROCESS[policy], class_map)
    images, _ = make_scenes(3, 93, 117, seed=3)  # odd sizes: resized, letterboxed or padded
    with Segmenter(tmp_path / "m.onnx") as segmenter:
        for image in images:
            mask = segmenter.predict(image)
            assert mask.shape == image.shape[:2]
            agreement = (mask == _expected_mask(segmenter, image)).mean()
            assert agreement >= 0.995, f"{policy} agreement {agreement:.4f}"
            if not class_map:
                logits = segmenter.logits(image)
                assert logits.shape == (CLASSES, *image.shape[:2])
                np.testing.assert_allclose(logits, _expected_logits(segmenter, image), atol=1e-3)


def test_tiles_and_batches_of_a_stride_4_model(tmp_path):
    _stride4_onnx(tmp_path / "m.onnx", PREPROCESS[ResizePolicy.KEEP], class_map=False)
    images, _ = make_scenes(2, 93, 117, seed=4)
    with Segmenter(tmp_path / "m.onnx") as whole, Segmenter(tmp_path / "m.onnx", tile=(64, 64), overlap=0.5) as tiled:
        masks = whole.predict_batch(list(images))
        for image, mask in zip(images, masks):
            assert (mask == whole.predict(image)).all()
            assert (tiled.predict(image) == mask).mean() >= 0.9


def test_an_output_that_breaks_the_recorded_stride_is_refused(tmp_path):
    pre = dataclasses.replace(PREPROCESS[ResizePolicy.STRETCH])
    _stride4_onnx(tmp_path / "m.onnx", pre, class_map=False)
    model = onnx.load(tmp_path / "m.onnx")
    from segdeploy.artifact_meta import read_metadata

    meta = read_metadata(model)
    onnx.save(attach_metadata(model, meta.replace(io=dataclasses.replace(meta.io, output_stride=2))),
              tmp_path / "wrong.onnx")
    with Segmenter(tmp_path / "wrong.onnx") as segmenter, pytest.raises(BadInputError, match="as its metadata"):
        segmenter.predict(make_scenes(1, 66, 82)[0][0])
