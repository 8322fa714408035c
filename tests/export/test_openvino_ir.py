"""ONNX -> OpenVINO IR: FP32 weights by default, metadata in rt_info, verified, atomic."""

import pytest

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.errors import BadInputError
from segdeploy.export.openvino_ir import OpenVinoConfig, export_openvino


@pytest.fixture(scope="module")
def onnx_path(unet_export):
    return unet_export[2].output


def test_ir_keeps_fp32_weights_and_metadata(onnx_path, tmp_path):
    report = export_openvino(onnx_path, tmp_path / "m.xml")
    compressed = export_openvino(onnx_path, tmp_path / "h.xml", OpenVinoConfig(compress_fp16=True))
    assert report.verification.passed and report.verification.agreement == 1.0
    assert compressed.verification.passed
    # FP32 weights take about twice the bytes of FP16 ones
    assert (tmp_path / "m.bin").stat().st_size > 1.8 * (tmp_path / "h.bin").stat().st_size
    meta = read_artifact_meta(tmp_path / "m.xml")
    assert meta.history[-1]["stage"] == "openvino" and meta.history[-1]["compress_fp16"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.bin", "h.xml", "m.bin", "m.xml"]  # no leftovers


def test_bad_output_names_are_refused(onnx_path, tmp_path):
    with pytest.raises(BadInputError, match=r"\.xml"):
        export_openvino(onnx_path, tmp_path / "m.bin")
    with pytest.raises(BadInputError, match="does not exist"):
        export_openvino(onnx_path, tmp_path / "missing" / "m.xml")
