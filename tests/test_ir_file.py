"""An OpenVINO IR pair checked before OpenVINO reads it: one precise line, nothing on stderr."""

import shutil

import pytest

from segdeploy.artifact_meta import read_openvino_meta
from segdeploy.errors import BadInputError
from segdeploy.ir_file import openvino_reason


@pytest.fixture
def ir(artifacts, tmp_path):
    xml = tmp_path / "m.xml"
    shutil.copy(artifacts["openvino"], xml)
    shutil.copy(artifacts["openvino"].with_suffix(".bin"), xml.with_suffix(".bin"))
    return xml


@pytest.mark.parametrize("damage, message", [
    (lambda xml: xml.with_suffix(".bin").unlink(), "has no weights file m.bin beside it"),
    (lambda xml: xml.with_suffix(".bin").write_bytes(xml.with_suffix(".bin").read_bytes()[:100]),
     "m.bin is truncated: 100 bytes, but m.xml reads up to byte"),
    (lambda xml: xml.write_text(xml.read_text()[:500]), "is not an OpenVINO IR: it is damaged XML"),
    (lambda xml: xml.write_text("<html><body/></html>"), "is XML but not an OpenVINO IR (its root element is <html>"),
    (lambda xml: xml.write_bytes(b"\x00\x01garbage" * 50), "is not an OpenVINO IR: it is unrecognised binary data"),
    # 10^6 nested elements kept OpenVINO's reader busy for minutes: found by fuzzing
    (lambda xml: xml.write_text("<net>" + "<a>" * 1_000_000 + "</a>" * 1_000_000 + "</net>"),
     "its XML nests deeper than 64 elements"),
], ids=["bin-missing", "bin-truncated", "xml-truncated", "not-ir", "binary", "deep"])
def test_damaged_pairs_are_one_quiet_line(ir, damage, message, capfd):
    damage(ir)
    with pytest.raises(BadInputError) as refused:
        read_openvino_meta(ir)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert capfd.readouterr().err == ""  # OpenVINO never saw it: no TensorFlow frontend parse errors


def test_openvino_messages_lose_their_source_locations():
    error = RuntimeError("Exception from src/inference/src/cpp/core.cpp:84:\nException from src/frontends/ir/x.cpp:"
                         "12:\nUnable to read the model: the weights are shorter than the layer needs\n")
    assert openvino_reason(error) == "Unable to read the model: the weights are shorter than the layer needs"
