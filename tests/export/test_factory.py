"""``segdeploy export --model-factory``: the user's own module, built by their code, weights loaded safely,
dict/tuple outputs reduced in the graph, stride-8 logits verified and aligned; errors in one line."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from benchmarks.byo_models import DeepLabLike, deeplab_like
from segdeploy.artifact_meta import read_onnx_meta
from segdeploy.cli.app import app
from segdeploy.data.preprocess import prepare
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.export.adopt_config import FactoryConfig, LabelConfig
from segdeploy.export.factory import factory_model
from segdeploy.runtime.segmenter import Segmenter

runner = CliRunner()
FACTORY = "benchmarks.byo_models:deeplab_like"


def export(*args):
    return runner.invoke(app, ["export", *[str(a) for a in args]])


def assert_clean_failure(result, fragment, code=3):
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:") and fragment in lines[-1], result.stderr
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def deeplab_onnx(tmp_path_factory):
    """The DeepLab-style module (dict output, stride 8) exported through the CLI with CamVid's classes."""
    path = tmp_path_factory.mktemp("factory") / "dl.onnx"
    result = export("--model-factory", FACTORY, "--factory-args", '{"num_classes": 11}', "--classes", "camvid",
                    "--input-size", "64x96", "-o", path)
    assert result.exit_code == 0, result.output
    return path


@pytest.mark.slow
def test_a_dict_output_at_stride_8_exports_verified_and_aligned(deeplab_onnx):
    meta = read_onnx_meta(deeplab_onnx)
    assert meta.io.output_stride == 8 and meta.class_names[0] == "sky" and meta.arch == "user"
    assert meta.config["factory"] == FACTORY and meta.history[-1]["verification"]["cases"]
    assert all(case["passed"] for case in meta.history[-1]["verification"]["cases"])
    module = deeplab_like(num_classes=11).eval()
    image = make_scenes(1, 70, 100, seed=2)[0][0]
    with Segmenter(deeplab_onnx) as segmenter:
        batch, _ = prepare(image, meta.preprocess, meta.io)
        with torch.no_grad():
            expected = module(torch.from_numpy(batch))["out"].numpy()
        np.testing.assert_allclose(segmenter.run(batch), expected, atol=1e-4)  # the "out" head, not "aux"
        assert segmenter.predict(image).shape == (70, 100)


def test_weights_from_a_state_dict_and_from_safetensors(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(7)
    source = DeepLabLike(num_classes=5)  # other random weights than the factory's seed gives
    torch.save(source.state_dict(), tmp_path / "w.pt")
    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    batch = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32))
    with torch.no_grad():
        expected = source.eval()(batch)["out"]
    for weights in ("w.pt", "w.safetensors"):
        model, _ = factory_model(FactoryConfig(FACTORY, weights=str(tmp_path / weights),
                                               labels=LabelConfig(input_size=(64, 64))))
        with torch.no_grad():
            torch.testing.assert_close(model(batch), expected)


def test_tuple_outputs_take_an_index():
    labels = LabelConfig(input_size=(32, 32))
    model, meta = factory_model(FactoryConfig("benchmarks.byo_models:two_heads", labels=labels))
    assert meta.io.output_stride == 2 and meta.num_classes == 5
    model, _ = factory_model(FactoryConfig("benchmarks.byo_models:two_heads", output_name="1", labels=labels))
    with torch.no_grad():
        batch = torch.zeros(1, 3, 32, 32)
        torch.testing.assert_close(model(batch), model.model(batch)[1])
    with pytest.raises(BadInputError, match="returns a tuple of 2; --output-name takes an index 0-1"):
        factory_model(FactoryConfig("benchmarks.byo_models:two_heads", output_name="2", labels=labels))


def _bad_safetensors(tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    return ["--weights", tmp_path / "bad.safetensors"]


def _wrong_weights(tmp_path):
    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pt")
    return ["--weights", tmp_path / "other.pt"]


@pytest.mark.parametrize("factory, extra, fragment", [
    ("no_such_package.models:build", [], "cannot import 'no_such_package.models' for --model-factory: "
                                         "ModuleNotFoundError"),
    ("tests.export.user_models:missing", [], "tests.export.user_models has no function 'missing'"),
    ("tests.export.user_models:not_a_module", [], "returned a str, not a torch nn.Module"),
    ("tests.export.user_models:raises", [], "raised ValueError: the factory needs a config file"),
    ("tests.export.user_models:broken_forward", [], "the model's forward raised RuntimeError on a 1x3x32x32 input: "
                                                    "shapes do not match"),
    ("tests.export.user_models", [], "--model-factory takes package.module:function"),
    (FACTORY, ["--factory-args", "[1, 2]"], "--factory-args must be a JSON object of keyword arguments, got list"),
    (FACTORY, ["--factory-args", "{nope"], "--factory-args is not JSON"),
    (FACTORY, ["--output-name", "main"], "the model's output has no 'main'; it has 'out', 'aux'"),
    (FACTORY, ["--classes", "voc"], "has 5 classes (channels); --classes voc has 21"),
    (FACTORY, _bad_safetensors, "bad.safetensors is not a valid .safetensors file"),
    (FACTORY, _wrong_weights, "does not fit benchmarks.byo_models:deeplab_like: missing"),
])
def test_bad_factories_and_weights_are_one_line_exit_3(tmp_path, factory, extra, fragment):
    extra = extra(tmp_path) if callable(extra) else extra
    result = export("--model-factory", factory, "--input-size", "32x32", "-o", tmp_path / "x.onnx", *extra)
    assert_clean_failure(result, fragment)
    assert not (tmp_path / "x.onnx").exists()


def test_usage_errors(tmp_path):
    assert_clean_failure(export("unet_tiny", "--model-factory", FACTORY, "--input-size", "32x32"),
                         "give either SOURCE or --model-factory", code=2)
    assert_clean_failure(export("--model-factory", FACTORY, "-o", tmp_path / "x.onnx"),
                         "--model-factory needs the eval size: give --input-size HxW")
    assert_clean_failure(export("unet_tiny", "--weights", tmp_path / "w.pt"), "use them with --model-factory", code=2)
    assert_clean_failure(export("unet_tiny", "--mean", "0.5,0.5,0.5"), "use them with --model-factory", code=2)


def test_torch_export_programs_are_refused_unopened(tmp_path):
    (tmp_path / "model.pt2").write_bytes(b"PK\x03\x04 not opened")
    assert_clean_failure(export(tmp_path / "model.pt2", "-o", tmp_path / "x.onnx"),
                         "segdeploy does not load torch.export programs (.pt2): loading one can run code")
