"""Third-party architectures through bring-your-own-model: Hugging Face's SegFormer (tiny config, random
weights, no download) by factory and as a plain ``torch.onnx.export`` ONNX adopted, stride-4 masks aligned.

The full MiT-b0 (dynamo export, int8/fp16, bench) is benchmarks/byo.py: a dynamo export of even the tiny
SegFormer takes ~40 s here, so the tests export the DeepLab-style module (tests/export/test_factory.py)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from segdeploy.data.preprocess import normalize, prepare
from segdeploy.data.synthetic import make_scenes
from segdeploy.export.adopt import AdoptConfig, adopt_onnx
from segdeploy.export.adopt_config import FactoryConfig, LabelConfig
from segdeploy.export.factory import factory_model
from segdeploy.runtime.segmenter import Segmenter

pytestmark = pytest.mark.slow
pytest.importorskip("transformers", reason="transformers is a dev dependency (scripts/setup installs it)")

FACTORY = "benchmarks.byo_models:segformer"


class Logits(torch.nn.Module):
    """What a user writes before torch.onnx.export: the Hugging Face output object's ``.logits``."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images).logits


def test_segformer_by_factory_selects_logits_at_stride_4():
    model, meta = factory_model(FactoryConfig(FACTORY, '{"num_labels": 11, "size": "tiny"}',
                                              labels=LabelConfig(classes="camvid", input_size=(64, 64))))
    assert meta.io.output_stride == 4 and meta.num_classes == 11 and meta.class_names[-1] == "bicyclist"
    batch = torch.from_numpy(normalize(make_scenes(1, 64, 64)[0], meta.preprocess))
    with torch.no_grad():
        torch.testing.assert_close(model(batch), model.model(batch).logits)


def test_a_plain_torch_onnx_export_of_segformer_adopted(tmp_path):
    from benchmarks.byo_models import segformer

    network = Logits(segformer(num_labels=11, size="tiny")).eval()
    torch.onnx.export(network, (torch.zeros(1, 3, 64, 64),), str(tmp_path / "segformer.onnx"), dynamo=False,
                      input_names=["pixel_values"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"pixel_values": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "h4", 3: "w4"}})
    report = adopt_onnx(tmp_path / "segformer.onnx", tmp_path / "adopted.onnx",
                        AdoptConfig(LabelConfig(classes="camvid", input_size=(64, 64))))
    assert report.meta.io.output_stride == 4 and report.dynamic_batch and report.dynamic_size
    assert report.meta.io.input_name == "pixel_values"  # the user's names are kept
    images, _ = make_scenes(2, 90, 120, seed=5)
    with Segmenter(tmp_path / "adopted.onnx") as segmenter:
        for image in images:
            batch, placement = prepare(image, segmenter.meta.preprocess, segmenter.meta.io)
            with torch.no_grad():  # eager SegFormer, upsampled as its own post-processing does
                logits = F.interpolate(network(torch.from_numpy(batch)), size=placement.input_size,
                                       mode="bilinear", align_corners=False)
            expected = logits[0].argmax(0).numpy().astype(np.uint8)
            expected = cv2.resize(expected, image.shape[1::-1], interpolation=cv2.INTER_NEAREST_EXACT)
            assert (segmenter.predict(image) == expected).mean() >= 0.995
