"""``segdeploy adopt``: foreign ONNX graphs get metadata their own runs confirm; every refusal is one line."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from segdeploy.artifact_meta import read_onnx_meta
from segdeploy.cli.app import app
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.export.adopt import AdoptConfig, adopt_onnx
from segdeploy.export.adopt_config import LabelConfig
from segdeploy.metadata import InputLayout, OutputKind
from segdeploy.runtime.segmenter import Segmenter
from tests.export.foreign_graphs import CLASSES, stride_graph

runner = CliRunner()


def adopt(*args):
    return runner.invoke(app, ["adopt", *[str(a) for a in args]])


def assert_clean_failure(result, fragment, code=3):
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and fragment in lines[0], result.stderr
    assert "Traceback" not in result.output


def test_a_stride_4_graph_with_an_auxiliary_output(tmp_path):
    stride_graph(tmp_path / "f.onnx", aux=True)
    result = adopt(tmp_path / "f.onnx", "-o", tmp_path / "a.onnx", "--classes", "camvid", "--input-size", "66x90",
                   "--output-name", "logits")
    assert result.exit_code == 0, result.output
    assert "stride 4" in result.stdout and "11 classes" in result.stdout
    meta = read_onnx_meta(tmp_path / "a.onnx")
    assert meta.io.output_stride == 4 and meta.io.output_size is None and meta.io.output_name == "logits"
    assert meta.io.input_name == "input" and meta.class_names[0] == "sky" and meta.preprocess.eval_size == (66, 90)
    assert meta.ignore_index == 11  # CamVid's void, as its labels mark it
    record = meta.history[-1]
    assert record["stage"] == "adopt" and record["dynamic_batch"] and record["dynamic_size"]
    assert [p["output"] for p in record["probes"]] == [[1, 11, 17, 23], [1, 11, 25, 31], [2, 11, 17, 23]]
    assert [o.name for o in onnx.load(tmp_path / "a.onnx").graph.output] == ["logits"]  # aux dropped
    images, _ = make_scenes(2, 100, 140, seed=1)
    with Segmenter(tmp_path / "a.onnx") as segmenter:
        masks = segmenter.predict_batch(list(images))
        assert all(mask.shape == (100, 140) for mask in masks)
        assert segmenter.logits(images[0]).shape == (CLASSES, 100, 140)


def test_static_graphs_take_their_size_from_the_graph(tmp_path):
    stride_graph(tmp_path / "f.onnx", stride=8, dims=(1, 3, 64, 96))
    report = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(num_classes=CLASSES)))
    assert (report.meta.preprocess.eval_size, report.meta.io.output_stride) == ((64, 96), 8)
    assert not report.dynamic_batch and not report.dynamic_size and len(report.probes) == 1
    with pytest.raises(BadInputError, match="fixed at 64x96; --input-size 32x32 contradicts it"):
        adopt_onnx(tmp_path / "f.onnx", tmp_path / "b.onnx",
                   AdoptConfig(LabelConfig(num_classes=CLASSES, input_size=(32, 32))))


@pytest.mark.parametrize("class_map", ["nhw", "n1hw"])
def test_class_map_outputs_need_the_class_count(tmp_path, class_map):
    stride_graph(tmp_path / "f.onnx", class_map=class_map)
    with pytest.raises(BadInputError, match="holds class ids, not logits: give --classes or --num-classes"):
        adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(input_size=(64, 64))))
    meta = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx",
                      AdoptConfig(LabelConfig(classes="camvid", input_size=(64, 64)))).meta
    assert meta.io.output == OutputKind.MASK and meta.io.output_stride == 4
    image = make_scenes(1, 70, 90)[0][0]
    with Segmenter(tmp_path / "a.onnx") as segmenter:
        assert segmenter.predict(image).shape == (70, 90)


def test_uint8_nhwc_graphs_that_normalise_themselves(tmp_path):
    stride_graph(tmp_path / "f.onnx", dims=("n", "h", "w", 3), uint8_nhwc=True)
    meta = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(
        preprocess="raw", input_size=(64, 64)))).meta
    assert (meta.io.input_dtype, meta.io.input_layout, meta.num_classes) == ("uint8", InputLayout.NHWC, CLASSES)
    assert meta.class_names[0] == "class_0"  # no --classes: generic names for the graph's channels


def test_a_fixed_output_size(tmp_path):
    stride_graph(tmp_path / "f.onnx", fixed_output=(20, 20))
    meta = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(input_size=(64, 96)))).meta
    assert meta.io.output_size == (20, 20)
    with Segmenter(tmp_path / "a.onnx") as segmenter:
        assert segmenter.predict(make_scenes(1, 50, 60)[0][0]).shape == (50, 60)


def test_existing_metadata_needs_force(tmp_path):
    stride_graph(tmp_path / "f.onnx")
    assert adopt(tmp_path / "f.onnx", "-o", tmp_path / "a.onnx", "--input-size", "64x64").exit_code == 0
    assert_clean_failure(adopt(tmp_path / "a.onnx", "-o", tmp_path / "b.onnx", "--input-size", "64x64"),
                         "already carries segdeploy metadata; use it as it is, or --force to replace it")
    result = adopt(tmp_path / "a.onnx", "-o", tmp_path / "b.onnx", "--input-size", "96x96", "--force")
    assert result.exit_code == 0 and read_onnx_meta(tmp_path / "b.onnx").preprocess.eval_size == (96, 96)


def test_external_data_beside_the_model_works_and_missing_is_one_line(tmp_path):
    stride_graph(tmp_path / "f.onnx")
    model = onnx.load(tmp_path / "f.onnx")
    onnx.save(model, tmp_path / "e.onnx", save_as_external_data=True, location="e.weights", size_threshold=0)
    assert adopt(tmp_path / "e.onnx", "-o", tmp_path / "a.onnx", "--input-size", "64x64").exit_code == 0
    (tmp_path / "e.weights").unlink()
    assert_clean_failure(adopt(tmp_path / "e.onnx", "-o", tmp_path / "b.onnx", "--input-size", "64x64"),
                         "keeps its weights in the external file 'e.weights', which is not beside it")
    assert not (tmp_path / "b.onnx").exists()


@pytest.mark.parametrize("graph, options, fragment", [
    ({"second_input": True}, [], "the graph has 2 inputs ('input', 'depth'); adopt takes models with one image input"),
    ({}, ["--output-name", "probs"], "the graph has no output 'probs'; its outputs are 'logits'"),
    ({}, ["--classes", "voc"], "output 'logits' has 11 classes (channels); --classes voc has 21"),
    ({}, ["--num-classes", "5"], "output 'logits' has 11 classes (channels); --num-classes is 5"),
    ({}, ["--std", "0.2,0,0.2"], "--std values must be > 0, got 0.2,0,0.2"),
    ({}, ["--std", "0.2,0.2"], "--std takes three comma-separated numbers (one per channel), got 2 value(s)"),
    ({}, ["--mean", "a,b,c"], "--mean takes three comma-separated numbers, got 'a,b,c'"),
    ({}, ["--classes", "kitti"], "--classes 'kitti' is neither a known set (camvid, cityscapes, ade20k, voc)"),
    ({"dims": (1, 4, 64, 64)}, [], "input 'input' is float 1x4x64x64; adopt takes float NCHW images with 3 channels"),
    ({"dims": ("n", 3, "h")}, [], "input 'input' is float ?x3x?; adopt takes float NCHW images with 3 channels"),
    ({"classes": 1}, [], "output 'logits' has 1 channel: a single-logit (sigmoid) model"),
])
def test_bad_graphs_and_options_are_one_line_exit_3(tmp_path, graph, options, fragment):
    stride_graph(tmp_path / "f.onnx", **graph)
    result = adopt(tmp_path / "f.onnx", "-o", tmp_path / "a.onnx", "--input-size", "64x64", *options)
    assert_clean_failure(result, fragment)
    assert not (tmp_path / "a.onnx").exists()


def test_a_rank_2_output_is_refused(tmp_path):
    stride_graph(tmp_path / "f.onnx")
    model = onnx.load(tmp_path / "f.onnx")
    model.graph.node.append(onnx.helper.make_node("Flatten", ["logits"], ["flat"]))
    model.graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info("flat", onnx.TensorProto.FLOAT, ["n", "k"]))
    onnx.save(model, tmp_path / "r.onnx")
    assert_clean_failure(adopt(tmp_path / "r.onnx", "-o", tmp_path / "a.onnx", "--input-size", "64x64"),
                         "output 'flat' is float of rank 2; adopt takes logits (N, C, h, w) or class ids")


def test_a_class_file_with_colours(tmp_path):
    (tmp_path / "classes.txt").write_text("road 128,64,128\nsky 70,130,180\n\n")
    stride_graph(tmp_path / "f.onnx", classes=2)
    meta = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(
        classes=str(tmp_path / "classes.txt"), input_size=(64, 64)))).meta
    assert meta.class_names == ("road", "sky") and meta.palette == ((128, 64, 128), (70, 130, 180))
    (tmp_path / "half.txt").write_text("road 1,2,3\nsky\n")
    with pytest.raises(BadInputError, match="1 of 2 lines have a colour"):
        LabelConfig(classes=str(tmp_path / "half.txt")).labels(2, "x")


def test_the_adopted_model_quantizes_benches_and_validates_for_build(tmp_path, scenes):
    from segdeploy.bench.runner import BenchConfig, bench_artifacts
    from segdeploy.bench.stats import Budget
    from segdeploy.quantize.config import AccuracyGate, QuantConfig
    from segdeploy.quantize.stage import quantize_onnx
    from segdeploy.trt.builder import BuildConfig, plan_build

    names = (scenes / "classes.txt").read_text().split()
    stride_graph(tmp_path / "f.onnx", classes=len(names))
    adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(
        classes=str(scenes / "classes.txt"), input_size=(64, 80))))
    quantize_onnx(tmp_path / "a.onnx", tmp_path / "a_int8.onnx", QuantConfig(
        precision="int8", target="cpu", calib=str(scenes / "train"), num_images=8,
        gate=AccuracyGate(min_agreement=0.5)))
    report = bench_artifacts(BenchConfig(artifacts=(str(tmp_path / "a_int8.onnx"),), data=str(scenes), num_images=3,
                                         warmup=Budget(iterations=1), iters=Budget(iterations=3)))
    (row,) = report.results
    assert row.ok and row.accuracy.agreement_vs_reference > 0.5  # the adopted fp32 ONNX is the reference
    assert report.reference is not None and report.reference.artifact == str(tmp_path / "a.onnx")
    _, meta, profile = plan_build(tmp_path / "a.onnx", BuildConfig())
    assert profile.opt == (1, 3, 64, 80) and meta.io.output_stride == 4


def test_sensitivity_and_exclusions_use_layer_regions_on_adopted_graphs(tmp_path, scenes):
    from segdeploy.quantize.config import AccuracyGate, QuantConfig
    from segdeploy.quantize.stage import quantize_onnx

    names = (scenes / "classes.txt").read_text().split()
    stride_graph(tmp_path / "f.onnx", classes=len(names))
    adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(
        classes=str(scenes / "classes.txt"), input_size=(64, 80))))
    common = {"precision": "int8", "target": "cpu", "calib": str(scenes / "train"), "num_images": 8,
              "gate": AccuracyGate(min_agreement=0.0)}
    report = quantize_onnx(tmp_path / "a.onnx", tmp_path / "s.onnx", QuantConfig(**common, auto_exclude=1))
    assert [row.group for row in report.sensitivity.rows] == ["conv_1"]  # the one region: the Conv and after
    with pytest.raises(BadInputError, match="'head' is no layer region of this graph.*conv_1"):
        quantize_onnx(tmp_path / "a.onnx", tmp_path / "x.onnx", QuantConfig(**common, exclude_modules=("head",)))
    excluded = quantize_onnx(tmp_path / "a.onnx", tmp_path / "e.onnx",
                             QuantConfig(**common, exclude_modules=("conv_1",)))
    assert "conv_1" in excluded.float_nodes


@pytest.mark.slow
def test_a_n1hw_class_map_through_quantize_accuracy_and_openvino(tmp_path):
    from segdeploy.export.openvino_ir import export_openvino
    from segdeploy.quantize.accuracy import predict_masks

    stride_graph(tmp_path / "f.onnx", class_map="n1hw")
    meta = adopt_onnx(tmp_path / "f.onnx", tmp_path / "a.onnx",
                      AdoptConfig(LabelConfig(classes="camvid", input_size=(64, 64)))).meta
    masks = predict_masks(tmp_path / "a.onnx", meta, list(make_scenes(2, 70, 90)[0]))
    assert all(mask.shape == (70, 90) for mask in masks) and len(set(np.unique(np.stack(masks)))) > 1
    export_openvino(tmp_path / "a.onnx", tmp_path / "a.xml")  # verified against ONNX Runtime on the class ids
    with Segmenter(tmp_path / "a.xml") as segmenter:
        assert (segmenter.predict(make_scenes(1, 70, 90)[0][0]) == masks[0]).mean() >= 0.99


def test_unnamed_nodes_get_the_names_their_layer_regions_have(tmp_path):
    stride_graph(tmp_path / "f.onnx")
    model = onnx.load(tmp_path / "f.onnx")
    for node in model.graph.node:
        node.name = ""
    onnx.save(model, tmp_path / "unnamed.onnx")
    adopt_onnx(tmp_path / "unnamed.onnx", tmp_path / "a.onnx", AdoptConfig(LabelConfig(input_size=(64, 64))))
    adopted = onnx.load(tmp_path / "a.onnx")
    assert [node.name for node in adopted.graph.node] == ["AveragePool_0", "Conv_1"]
    assert [o.name for o in adopted.graph.output] == ["logits"] and adopted.graph.input[0].name == "input"


def test_a_graph_that_only_runs_at_its_export_size_is_one_line(tmp_path):
    """Dynamic axes declared, sizes baked into a Reshape (as legacy exporters leave them)."""
    stride_graph(tmp_path / "f.onnx")
    model = onnx.load(tmp_path / "f.onnx")
    shape = onnx.numpy_helper.from_array(np.array([1, CLASSES, 16, 16], np.int64), "baked")
    model.graph.initializer.append(shape)
    model.graph.node.append(onnx.helper.make_node("Reshape", ["logits", "baked"], ["fixed"], name="reshape_9"))
    model.graph.output[0].CopyFrom(onnx.helper.make_tensor_value_info("fixed", onnx.TensorProto.FLOAT,
                                                                      ["n", CLASSES, "a", "b"]))
    onnx.save(model, tmp_path / "baked.onnx")
    assert_clean_failure(adopt(tmp_path / "baked.onnx", "-o", tmp_path / "a.onnx", "--input-size", "64x64"),
                         "input 'input' declares a dynamic height/width but the graph does not run at batch 1, 96x96")
