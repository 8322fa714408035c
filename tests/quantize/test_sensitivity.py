"""Module exclusions, residual-Add Q/DQ and per-layer sensitivity on tiny trained models."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from segdeploy.artifact_meta import attach_metadata
from segdeploy.errors import BadInputError
from segdeploy.metadata import Preprocess, new_meta
from segdeploy.module_paths import MODULE_KEY, module_groups, module_of, residual_adds
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.int8 import quantize_int8

CONFIG = QuantConfig(num_images=6, gate=AccuracyGate(min_agreement=0.0, max_miou_drop=100.0, eval_images=4))


def _weight_dequantized(model, node):
    producers = {out: n for n in model.graph.node for out in n.output}
    return node.input[1] in producers and producers[node.input[1]].op_type == "DequantizeLinear"


def test_exclude_modules_keeps_a_stage_in_float(unet_fp32, scenes, tmp_path):
    report = quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), CONFIG.replace(exclude_modules=("stem",)))
    source = onnx.load(unet_fp32)
    stem_convs = {n.name for n in source.graph.node if n.op_type == "Conv" and module_of(n).startswith("stem")}
    model = onnx.load(report.output)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert stem_convs and stem_convs <= set(report.float_nodes)
    assert all(not _weight_dequantized(model, n) for n in convs if n.name in stem_convs)
    assert all(_weight_dequantized(model, n) for n in convs if n.name not in stem_convs)


def test_unknown_module_is_bad_input(unet_fp32, scenes, tmp_path):
    with pytest.raises(BadInputError, match="matches no node"):
        quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), CONFIG.replace(exclude_modules=("nope",)))
    assert not (tmp_path / "x.onnx").exists()


def test_sensitivity_ranks_every_group_of_a_trained_model(unet_fp32, scenes, tmp_path):
    config = CONFIG.replace(target="cpu", sensitivity=True, sensitivity_images=2)
    report = quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), config)
    groups = module_groups(onnx.load(unet_fp32), ("Conv", "ConvTranspose"))
    sensitivity = report.sensitivity
    assert sorted(row.group for row in sensitivity.rows) == sorted(groups)
    recovered = [row.recovered for row in sensitivity.rows]
    assert recovered == sorted(recovered, reverse=True) and sensitivity.images == 2 and sensitivity.seconds > 0
    best = sensitivity.rows[0]
    assert best.recovered == pytest.approx(best.agreement_miou - sensitivity.baseline_agreement_miou)
    # --sensitivity alone ranks; only --auto-exclude keeps groups in float
    assert sensitivity.auto_excluded == () and report.float_nodes == ()


def _node(op_type, name, module, inputs, output, **attributes):
    node = helper.make_node(op_type, inputs, [output], name=name, **attributes)
    node.metadata_props.add(key=MODULE_KEY, value=module)
    return node


def _conv(name, module, source, output, weight, bias):
    node = _node("Conv", name, module, [source, f"{name}.w", f"{name}.b"], output, pads=[weight.shape[2] // 2] * 4)
    return node, [numpy_helper.from_array(np.asarray(value, np.float32), f"{name}.{kind}")
                  for kind, value in (("w", weight), ("b", bias))]


def _fragile_model() -> onnx.ModelProto:
    """Conv+Relu groups first -> fragile -> last, where quantizing "fragile" provably wrecks the output.

    Channel 7 of "first" is always 0 (zero weights, bias -1, Relu). "fragile" reads it with
    weight 1000, which changes nothing in float, but its per-channel int8 weight scale
    becomes 1000/127, so every other weight of "fragile" rounds to 0: quantized, it outputs
    its zero bias whatever the image, and "last" then predicts one class everywhere.
    Leaving "first" or "last" in float cannot undo that, so they recover exactly nothing.
    """
    rng = np.random.default_rng(0)
    w_first, b_first = rng.normal(0, 0.5, (8, 3, 3, 3)), rng.normal(0, 0.1, 8)
    w_first[7], b_first[7] = 0, -1
    w_fragile = rng.normal(0, 0.5, (8, 8, 1, 1))
    w_fragile[:, 7] = 1000
    convs = [_conv("first", "first.0", "input", "c1", w_first, b_first),
             _conv("fragile", "fragile.0", "h1", "c2", w_fragile, np.zeros(8)),
             _conv("last", "last.0", "h2", "logits", rng.normal(0, 0.5, (5, 8, 1, 1)), 0.3 * np.arange(5))]
    (first, first_w), (fragile, fragile_w), (last, last_w) = convs
    nodes = [first, _node("Relu", "first_relu", "first.1", ["c1"], "h1"),
             fragile, _node("Relu", "fragile_relu", "fragile.1", ["c2"], "h2"), last]
    tensor = helper.make_tensor_value_info
    graph = helper.make_graph(nodes, "fragile", [tensor("input", TensorProto.FLOAT, ["N", 3, "H", "W"])],
                              [tensor("logits", TensorProto.FLOAT, ["N", 5, "H", "W"])], first_w + fragile_w + last_w)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return attach_metadata(model, new_meta("fragile", {}, 5, preprocess=Preprocess(eval_size=(64, 80))))


def test_auto_exclude_keeps_exactly_the_group_that_matters_in_float(scenes, tmp_path):
    onnx.save(_fragile_model(), tmp_path / "fragile.onnx")
    # auto_exclude=2, yet one group is kept: only a group that recovers agreement stays float
    config = CONFIG.replace(target="cpu", auto_exclude=2, sensitivity_images=2)
    report = quantize_int8(tmp_path / "fragile.onnx", tmp_path / "x.onnx", str(scenes), config)
    rows = report.sensitivity.rows
    assert rows[0].group == "fragile" and rows[0].recovered > 0.3
    assert sorted(row.group for row in rows[1:]) == ["first", "last"] and all(row.recovered == 0 for row in rows[1:])
    assert report.sensitivity.auto_excluded == ("fragile",)
    assert report.float_nodes == ("fragile", "fragile_relu")
    model = onnx.load(report.output)
    convs = {node.name: node for node in model.graph.node if node.op_type == "Conv"}
    assert [name for name, node in convs.items() if not _weight_dequantized(model, node)] == ["fragile"]


@pytest.mark.slow  # the swin_fp32 fixture trains and exports a Swin-Seg (~80 s on 2 cores)
def test_tensorrt_target_puts_qdq_on_residual_add_inputs_only(swin_fp32, scenes, tmp_path):
    source = onnx.load(swin_fp32)
    residuals = set(residual_adds(source, module_groups(source, ("MatMul", "Conv"))))
    assert residuals  # every Swin block has two
    report = quantize_int8(swin_fp32, tmp_path / "x.onnx", str(scenes), CONFIG.replace(high_precision="fp32"))
    model = onnx.load(report.output)
    producers = {out: n for n in model.graph.node for out in n.output}
    for node in model.graph.node:
        if node.op_type != "Add":
            continue
        quantized_inputs = [producers.get(name) is not None and producers[name].op_type == "DequantizeLinear"
                            for name in node.input]
        assert all(quantized_inputs) == (node.name in residuals), node.name


def test_cli_prints_the_sensitivity_table_and_keeps_groups_float(unet_fp32, scenes, tmp_path):
    from typer.testing import CliRunner

    from segdeploy.cli.app import app

    args = ["quantize", unet_fp32, "--precision", "int8", "--target", "cpu", "--calib", scenes, "--num-images", "4",
            "--sensitivity", "--sensitivity-images", "2", "--exclude-modules", "head", "--min-agreement", "0",
            "--max-miou-drop", "100", "--eval-images", "2", "-o", tmp_path / "x.onnx", "--json", tmp_path / "r.json"]
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, result.output
    assert "sensitivity: one group in float per trial" in result.stdout and "stem" in result.stdout
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["sensitivity"]["rows"]) >= 5 and report["sensitivity"]["auto_excluded"] == []
    assert report["float_nodes"]  # the head, by --exclude-modules
