"""Module exclusions, residual-Add Q/DQ and per-layer sensitivity on tiny trained models."""

import json

import onnx
import pytest

from segdeploy.errors import BadInputError
from segdeploy.module_paths import module_groups, module_of, residual_adds
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


def test_sensitivity_ranks_every_group_and_auto_exclude_keeps_the_worst_float(unet_fp32, scenes, tmp_path):
    config = CONFIG.replace(target="cpu", auto_exclude=1, sensitivity_images=2)
    report = quantize_int8(unet_fp32, tmp_path / "x.onnx", str(scenes), config)
    groups = module_groups(onnx.load(unet_fp32), ("Conv", "ConvTranspose"))
    sensitivity = report.sensitivity
    assert sorted(row.group for row in sensitivity.rows) == sorted(groups)
    recovered = [row.recovered for row in sensitivity.rows]
    assert recovered == sorted(recovered, reverse=True) and sensitivity.images == 2 and sensitivity.seconds > 0
    best = sensitivity.rows[0]
    assert best.recovered == pytest.approx(best.agreement_miou - sensitivity.baseline_agreement_miou)
    if best.recovered > 0:  # only a group that helps is kept in float
        assert sensitivity.auto_excluded == (best.group,) and set(groups[best.group]) <= set(report.float_nodes)
    else:
        assert sensitivity.auto_excluded == () and report.float_nodes == ()


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
