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


def test_a_static_export_at_its_own_size_converts_and_runs(export_variant, tmp_path):
    """A static graph takes one size and batch 1: its metadata's eval size is that size, and the IR's
    verification feeds exactly that (it once fed batch 2 at the preset's 360x480)."""
    from segdeploy.runtime.segmenter import Segmenter

    static = export_variant(dynamic=False, input_size=(32, 48))
    assert static.meta.preprocess.eval_size == (32, 48)
    report = export_openvino(static.output, tmp_path / "s.xml")
    assert report.verification.passed
    with Segmenter(tmp_path / "s.xml") as segmenter:
        assert segmenter.predict(__import__("numpy").zeros((70, 90, 3), "uint8")).shape == (70, 90)
