"""CPU INT8 that keeps its accuracy on every CPU class: 7-bit weights by default, --isa native recorded and
warned about where it was not gated."""

import numpy as np
import pytest
from onnx import numpy_helper

from segdeploy.artifact_meta import read_metadata
from segdeploy.errors import CheckFailedError, SegdeployWarning
from segdeploy.isa import isa_class
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.int8 import quantize_int8
from segdeploy.runtime.segmenter import Segmenter, isa_risk

CONFIG = QuantConfig(target="cpu", num_images=8, gate=AccuracyGate(min_agreement=0.0, max_miou_drop=100.0))


def _weight_range(path) -> int:
    """The largest |int8 weight| among the Conv weights' quantized initializers."""
    model = load_onnx(path)
    inits = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    weights = [inits[node.input[0]] for node in model.graph.node if node.op_type == "DequantizeLinear"
               and node.input[0] in inits and inits[node.input[0]].dtype == np.int8]
    assert weights
    return max(int(np.abs(weight.astype(np.int16)).max()) for weight in weights)


def _record(path) -> dict:
    return read_metadata(load_onnx(path)).history[-1]


def test_the_default_uses_seven_bit_weights_and_says_it_is_portable(unet_fp32, scenes, tmp_path):
    report = quantize_int8(unet_fp32, tmp_path / "p.onnx", str(scenes), CONFIG)
    assert _weight_range(report.output) <= 64  # u8 x s8 products stay inside int16 on AVX2's vpmaddubsw
    record = _record(report.output)
    assert record["portable"] is True and record["isa_class"] == isa_class()
    assert record["weights"] == "int8 symmetric, 7-bit range"


def test_native_uses_the_full_range_only_where_the_cpu_has_it(unet_fp32, scenes, tmp_path, monkeypatch):
    import segdeploy.quantize.int8 as int8

    monkeypatch.setattr(int8, "full_range_int8", lambda: True)  # as on a VNNI/AMX CPU
    native = quantize_int8(unet_fp32, tmp_path / "n.onnx", str(scenes), CONFIG.replace(isa="native"))
    assert _weight_range(native.output) > 64 and _record(native.output)["portable"] is False
    monkeypatch.setattr(int8, "full_range_int8", lambda: False)  # as on an AVX2 CPU: native is portable there
    here = quantize_int8(unet_fp32, tmp_path / "a.onnx", str(scenes), CONFIG.replace(isa="native"))
    assert _weight_range(here.output) <= 64 and _record(here.output)["portable"] is True


def test_a_non_portable_artifact_warns_on_another_cpu_class(unet_fp32, scenes, tmp_path, monkeypatch):
    import segdeploy.quantize.int8 as int8

    monkeypatch.setattr(int8, "full_range_int8", lambda: True)
    native = quantize_int8(unet_fp32, tmp_path / "n.onnx", str(scenes), CONFIG.replace(isa="native"))
    meta = read_metadata(load_onnx(native.output))
    assert isa_risk(meta) is None  # gated on this CPU class: nothing to say
    elsewhere = {**meta.history[-1], "isa_class": "x86-amx" if isa_class() != "x86-amx" else "x86-avx2"}
    moved = meta.replace(history=(*meta.history[:-1], elsewhere))
    assert "re-quantize it with the portable default" in isa_risk(moved)
    monkeypatch.setattr("segdeploy.runtime.segmenter.read_artifact_meta", lambda path: moved)
    with pytest.warns(SegdeployWarning, match=f"made for {elsewhere['isa_class']} CPUs .* this CPU is {isa_class()}"):
        Segmenter(native.output)


def test_cpu_int8_is_gated_on_every_cpu_runtime(unet_fp32, scenes, tmp_path):
    report = quantize_int8(unet_fp32, tmp_path / "g.onnx", str(scenes), CONFIG)
    accuracy = report.accuracy
    assert accuracy.runtime == "onnxruntime" and [other.runtime for other in accuracy.other_runtimes] == ["openvino"]
    assert all(0 <= other.agreement_miou <= 1 and other.images == accuracy.images for other in accuracy.other_runtimes)


def test_a_runtime_that_fails_fails_the_gate(unet_fp32, scenes, tmp_path, monkeypatch):
    import segdeploy.quantize.accuracy as accuracy_module

    real = accuracy_module.predict_masks

    def broken_openvino(model, meta, images, runtime="onnxruntime"):
        masks = real(model, meta, images, runtime)
        return [mask * 0 + 1 for mask in masks] if runtime == "openvino" else masks  # one class everywhere

    monkeypatch.setattr(accuracy_module, "predict_masks", broken_openvino)
    strict = CONFIG.replace(gate=AccuracyGate(max_miou_drop=20.0))  # labelled scenes: the mIoU-drop gate
    with pytest.raises(CheckFailedError, match="accuracy gate failed: openvino: mIoU drop") as failure:
        quantize_int8(unet_fp32, tmp_path / "b.onnx", str(scenes), strict)
    assert failure.value.report.accuracy.other_runtimes[0].passed is False
    assert not (tmp_path / "b.onnx").exists()
