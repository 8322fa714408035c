"""--target openvino: an INT8 IR quantized by NNCF, gated on OpenVINO, metadata inside, nothing half-written."""

import numpy as np
import pytest

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.isa import isa_class
from segdeploy.metadata import Precision
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.stage import default_quantized_path, quantize_onnx

pytest.importorskip("nncf")
pytest.importorskip("openvino")

CONFIG = QuantConfig(target="openvino", num_images=12, gate=AccuracyGate(min_agreement=0.0, max_miou_drop=100.0))


@pytest.fixture(scope="module")
def openvino_int8(unet_fp32, scenes, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov") / "unet_int8.xml"
    return quantize_onnx(unet_fp32, out, CONFIG.replace(calib=str(scenes)))


def test_writes_a_gated_ir_with_its_recipe_in_the_metadata(openvino_int8):
    report = openvino_int8
    assert report.output.endswith(".xml") and report.quantized_ops["FakeQuantize"] > 0
    accuracy = report.accuracy
    assert accuracy.runtime == "openvino" and not accuracy.other_runtimes and accuracy.miou_float is not None
    assert accuracy.pixel_agreement >= 0.95 and report.calibration_images == 12
    meta = read_artifact_meta(report.output)
    record = meta.history[-1]
    assert meta.precision == Precision.INT8 and record["target"] == "openvino"
    assert record["quantizer"].startswith("nncf ") and record["recipe"]["model_type"] == "cnn"
    assert record["portable"] is True and record["isa_class"] == isa_class()
    assert record["recipe"]["overflow_fix"] == "enable"  # 7-bit weights on every layer: portable
    assert record["accuracy"]["runtime"] == "openvino"


def test_the_ir_runs_in_the_segmenter_and_agrees_with_the_float_model(openvino_int8, unet_fp32, scenes):
    from segdeploy.data.datasets import open_dataset
    from segdeploy.runtime.segmenter import Segmenter

    image = open_dataset(scenes, "val")[0].image
    with Segmenter(openvino_int8.output) as quantized, Segmenter(unet_fp32) as reference:
        agreement = np.mean(quantized.predict(image) == reference.predict(image))
    assert agreement >= 0.9


def test_the_calibration_set_is_written_beside_the_ir(openvino_int8):
    from pathlib import Path

    output = Path(openvino_int8.output)
    assert output.with_suffix(".bin").is_file() and output.with_name("unet_int8.calib.json").is_file()


def test_failed_gate_writes_nothing(unet_fp32, scenes, tmp_path):
    strict = CONFIG.replace(calib=str(scenes), num_images=2, gate=AccuracyGate(max_miou_drop=-1.0))
    with pytest.raises(CheckFailedError, match="accuracy gate failed") as failure:
        quantize_onnx(unet_fp32, tmp_path / "x.xml", strict)
    assert failure.value.report.accuracy.runtime == "openvino"
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("out, changes, message", [
    ("x.onnx", {}, "must end in .xml"),
    ("x.xml", {"sensitivity": True}, "apply to ONNX targets"),
    ("x.xml", {"exclude_ops": ("Conv",)}, "apply to ONNX targets"),
    ("x.xml", {"exclude_nodes": ("no_such_node",)}, "does not have: no_such_node"),
    ("x.xml", {"precision": "fp16"}, "makes INT8 IR"),
    ("missing/x.xml", {}, "does not exist"),
])
def test_bad_requests_are_one_line_and_write_nothing(unet_fp32, scenes, tmp_path, out, changes, message):
    with pytest.raises(BadInputError, match=message):
        quantize_onnx(unet_fp32, tmp_path / out, CONFIG.replace(calib=str(scenes), num_images=2, **changes))
    assert not list(tmp_path.iterdir())


def test_the_default_output_is_an_ir_beside_the_model(tmp_path):
    assert default_quantized_path(tmp_path / "m.onnx", CONFIG).name == "m_int8_openvino.xml"


@pytest.mark.slow  # a Swin-Seg export (~80 s on 2 cores)
def test_transformer_matmuls_stay_float_without_an_int8_gemm_that_pays(swin_fp32, scenes, tmp_path, monkeypatch):
    import segdeploy.quantize.openvino_int8 as openvino_int8

    fake_quantize = {}
    for vnni, matmuls in ((False, "float"), (True, "int8")):
        monkeypatch.setattr(openvino_int8, "full_range_int8", lambda vnni=vnni: vnni)
        report = quantize_onnx(swin_fp32, tmp_path / f"{matmuls}.xml", CONFIG.replace(calib=str(scenes), num_images=4))
        recipe = read_artifact_meta(report.output).history[-1]["recipe"]
        assert recipe["model_type"] == "transformer" and recipe["matmuls"].startswith(matmuls)
        fake_quantize[matmuls] = report.quantized_ops["FakeQuantize"]
    assert 0 < fake_quantize["float"] < fake_quantize["int8"]  # the convolutions are int8 either way


def test_info_describes_the_ir(openvino_int8):
    from segdeploy.info import describe_artifact

    described = describe_artifact(openvino_int8.output)
    assert described["kind"] == "openvino" and described["precision"] == "int8"
    assert described["inputs"][0]["shape"][1] == 3 and described["size_bytes"] > 0
