import json
import subprocess
import sys
from collections import defaultdict

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from segdeploy.artifact_meta import read_metadata
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.metadata import Precision
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.calibration import calibration_set_path
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.dynamic import quantize_dynamic
from segdeploy.quantize.fp16 import convert_fp16
from segdeploy.quantize.int8 import quantize_int8

CONFIG = QuantConfig(num_images=12, gate=AccuracyGate(min_agreement=0.0, max_miou_drop=100.0))


@pytest.fixture(scope="module")
def int8_models(unet_fp32, scenes, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    configs = {"tensorrt": CONFIG.replace(target="tensorrt"),  # FP16 remainder by default
               "cpu": CONFIG.replace(target="cpu")}
    return {target: quantize_int8(unet_fp32, folder / f"{target}.onnx", str(scenes), config)
            for target, config in configs.items()}


def _initializers(model):
    return {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}


def _consumers(model):
    consumers = defaultdict(list)
    for node in model.graph.node:
        for position, name in enumerate(node.input):
            consumers[name].append((node, position))
    return consumers


@pytest.mark.parametrize("target", ["tensorrt", "cpu"])
def test_int8_keeps_agreement_for_both_targets(int8_models, target):
    report = int8_models[target]
    assert report.accuracy.pixel_agreement >= 0.95 and report.accuracy.miou_float is not None
    assert report.quantized_ops["QuantizeLinear"] > 0 and report.calibration_images == 12
    assert read_metadata(load_onnx(report.output)).precision == Precision.INT8


def test_tensorrt_qdq_structure(int8_models):
    model = load_onnx(int8_models["tensorrt"].output)
    inits = _initializers(model)
    produced_by = {out: node for node in model.graph.node for out in node.output}
    zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
                   and len(n.input) > 2]
    assert zero_points and all(z.dtype == np.int8 and not z.any() for z in zero_points)  # symmetric int8
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        weight_dq = produced_by[node.input[1]]
        assert weight_dq.op_type == "DequantizeLinear"
        axis = next((a.i for a in weight_dq.attribute if a.name == "axis"), 1)
        assert axis == (0 if node.op_type == "Conv" else 1)  # per output channel
        assert inits[weight_dq.input[1]].size > 1
        if len(node.input) > 2:  # no bias Q/DQ: TensorRT rejects int32 bias; float (FP16 remainder) instead
            assert node.input[2] in inits and inits[node.input[2]].dtype in (np.float16, np.float32)
    # the head's output (the graph output) is not quantized
    assert produced_by[model.graph.output[0].name].op_type != "DequantizeLinear"


@pytest.mark.parametrize("target, optimized", [("tensorrt", False), ("cpu", True)])
def test_fp16_scale_qdq_runs_without_graph_optimisation(int8_models, target, optimized):
    # ONNX Runtime's optimiser miscomputes Q/DQ with FP16 scales; the backend must notice them.
    from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend

    with OnnxRuntimeBackend(int8_models[target].output) as backend:
        assert backend.optimized is optimized


def test_cpu_target_uses_uint8_activations(int8_models):
    model = load_onnx(int8_models["cpu"].output)
    inits = _initializers(model)
    activation_zero_points = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    assert activation_zero_points and all(z.dtype == np.uint8 for z in activation_zero_points)


def test_cpu_target_keeps_pooling_concat_and_relu_in_int8(int8_models):
    # Q/DQ around MaxPool and Concat (ONNX Runtime's int8 NHWC MaxPool, QLinearConcat); Relus folded into the
    # Conv's Q; the tensorrt target quantizes only the inputs of weighted ops and residual Adds.
    def ops_reading_dequantized(target):
        model = load_onnx(int8_models[target].output)
        produced_by = {out: node.op_type for node in model.graph.node for out in node.output}
        return {node.op_type for node in model.graph.node
                if node.input and produced_by.get(node.input[0]) == "DequantizeLinear"}, model

    cpu_ops, cpu_model = ops_reading_dequantized("cpu")
    assert {"MaxPool", "Concat"} <= cpu_ops
    assert not any(node.op_type == "Relu" for node in cpu_model.graph.node)
    tensorrt_ops, tensorrt_model = ops_reading_dequantized("tensorrt")
    assert not {"MaxPool", "Concat"} & tensorrt_ops
    assert any(node.op_type == "Relu" for node in tensorrt_model.graph.node)


def test_manifest_is_written_and_reproducible(int8_models, unet_fp32, scenes, tmp_path):
    first = int8_models["cpu"]
    again = quantize_int8(unet_fp32, tmp_path / "again.onnx", str(scenes), CONFIG.replace(target="cpu"))
    assert again.calibration_digest == first.calibration_digest
    written = json.loads(calibration_set_path(tmp_path / "again.onnx").read_text())
    assert written["digest"] == first.calibration_digest and len(written["images"]) == 12
    # the manifest works as a calibration source and gives the same set
    from_manifest = quantize_int8(unet_fp32, tmp_path / "m.onnx", str(calibration_set_path(tmp_path / "again.onnx")),
                                  CONFIG.replace(target="cpu"))
    assert from_manifest.calibration_digest == first.calibration_digest


def test_fp16_runs_and_agrees(unet_fp32, tmp_path):
    report = convert_fp16(unet_fp32, tmp_path / "fp16.onnx")
    model = load_onnx(report.output)
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # float32 I/O
    assert report.accuracy.agreement_miou >= 0.98 and report.accuracy.passed


@pytest.mark.slow  # trains and exports a Swin-Seg (~80 s on 2 cores)
def test_dynamic_int8_quantizes_swin_matmuls(swin_fp32, tmp_path):
    report = quantize_dynamic(swin_fp32, tmp_path / "dyn.onnx", QuantConfig(gate=CONFIG.gate))
    ops = {node.op_type for node in load_onnx(report.output).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert report.accuracy.pixel_agreement >= 0.95


def test_dynamic_int8_on_a_conv_only_unet_exits_1(unet_fp32, tmp_path):
    with pytest.raises(CheckFailedError, match="nothing to quantize"):
        quantize_dynamic(unet_fp32, tmp_path / "dyn.onnx")
    with pytest.raises(BadInputError, match="cannot target TensorRT"):
        quantize_dynamic(unet_fp32, tmp_path / "dyn.onnx", QuantConfig(target="tensorrt"))
    assert not list(tmp_path.iterdir())


def test_failed_gate_writes_nothing(unet_fp32, scenes, tmp_path):
    strict = QuantConfig(num_images=2, method="minmax", gate=AccuracyGate(max_miou_drop=-1.0))
    with pytest.raises(CheckFailedError, match="accuracy gate failed") as failure:
        quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), strict)
    assert failure.value.report.accuracy is not None and not (tmp_path / "x.onnx").exists()


def test_already_quantized_and_bad_sources(int8_models, unet_fp32, tmp_path):
    with pytest.raises(BadInputError, match="already quantized"):
        convert_fp16(int8_models["cpu"].output, tmp_path / "x.onnx")
    with pytest.raises(BadInputError, match="not found"):
        quantize_int8(unet_fp32, tmp_path / "x.onnx", str(tmp_path / "nothing"), CONFIG)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInputError, match="no images"):
        quantize_int8(unet_fp32, tmp_path / "x.onnx", str(tmp_path / "empty"), CONFIG)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not a png")
    with pytest.raises(BadInputError, match="could be decoded"):
        quantize_int8(unet_fp32, tmp_path / "x.onnx", str(tmp_path / "junk"), CONFIG)


_PEAK_SCRIPT = """
import sys
from segdeploy.onnx_graph import load_onnx
from segdeploy.artifact_meta import read_metadata
from segdeploy.quantize.calibration import collect_ranges
from pathlib import Path
files = tuple(sorted(Path(sys.argv[2]).glob('*.png')))[: int(sys.argv[3])]
meta = read_metadata(load_onnx(sys.argv[1]))
meta = meta.replace(preprocess=meta.preprocess.__class__(eval_size=(360, 480), divisor=meta.preprocess.divisor))
_, peak = collect_ranges(Path(sys.argv[1]), files, meta, 'entropy', 99.999, True)
print(peak)
"""


@pytest.mark.slow
def test_calibration_memory_does_not_grow_with_the_number_of_images(unet_fp32, scenes):
    images = scenes / "train" / "images"

    def peak(count):
        result = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT, str(unet_fp32), str(images), str(count)],
                                capture_output=True, text=True, check=True)
        return float(result.stdout.strip().splitlines()[-1])

    few, many = peak(2), peak(16)
    # Keeping every activation of 14 more images at 360x480 would add well over 100 MB.
    assert many - few < 60, (few, many)


def test_tensorrt_remainder_is_fp16_with_float32_io(int8_models):
    model = load_onnx(int8_models["tensorrt"].output)
    inits = _initializers(model)
    scales = [inits[n.input[1]] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[1] in inits]
    assert scales and all(s.dtype == np.float16 for s in scales)  # Q/DQ with FP16 scales (opset >= 19)
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    record = read_metadata(model).history[-1]
    assert record["high_precision"] == "fp16"


def test_fp32_remainder_on_request(unet_fp32, scenes, tmp_path):
    config = CONFIG.replace(target="tensorrt", num_images=2, high_precision="fp32")
    report = quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), config)
    inits = _initializers(load_onnx(report.output))
    assert not any(value.dtype == np.float16 for value in inits.values())


def test_fp16_remainder_needs_opset_19(unet_fp32, scenes, tmp_path):
    model = load_onnx(unet_fp32)
    next(o for o in model.opset_import if o.domain in ("", "ai.onnx")).version = 18
    onnx.save(model, tmp_path / "old.onnx")
    with pytest.raises(BadInputError, match="opset >= 19"):
        quantize_int8(tmp_path / "old.onnx", tmp_path / "x.onnx", str(scenes), CONFIG.replace(high_precision="fp16"))


@pytest.mark.parametrize("fixture", ["unet_fp32", pytest.param("swin_fp32", marks=pytest.mark.slow)])
def test_the_float_models_are_not_trivial(fixture, request, scenes):
    # Agreement tests mean nothing on a model that predicts one class everywhere.
    from segdeploy.data.datasets import open_dataset
    from segdeploy.runtime.segmenter import Segmenter

    segmenter, val = Segmenter(request.getfixturevalue(fixture)), open_dataset(scenes, "val")
    predictions = [(segmenter.predict(val[i].image), val[i].mask) for i in range(len(val))]
    accuracy = np.mean([np.mean(mask == truth) for mask, truth in predictions])
    assert accuracy >= 0.6 and len(np.unique(np.concatenate([m.ravel() for m, _ in predictions]))) >= 3
