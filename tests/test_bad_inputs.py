"""The bad-input battery: every command and the API, one clear line, the right exit code,
no traceback without --debug, and nothing half-written.

Each case builds its inputs in a fresh folder, runs the CLI in-process (CliRunner) and checks
the last stderr line, the exit code and that the output path was not created.
"""

import pickle
import shutil

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.metadata import ONNX_METADATA_KEY
from tests.bad_files import SIDE_EFFECT_FILE, CodePayload

runner = CliRunner()


def _random_bytes(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _truncated(source, path):
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _onnx_with_metadata(source, path, value):
    model = onnx.load(source)
    kept = [p for p in model.metadata_props if p.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    if value is not None:
        model.metadata_props.add(key=ONNX_METADATA_KEY, value=value)
    onnx.save(model, path)
    return path


def _image(path, array):
    cv2.imwrite(str(path), array)
    return path


def _dataset(root, size_mismatch=False, bad_label=False):
    shutil.copytree(root, root.parent / "copy", dirs_exist_ok=True)
    copy = root.parent / "copy"
    masks = sorted((copy / "val" / "masks").iterdir())
    if size_mismatch:
        _image(masks[0], np.zeros((10, 10), np.uint8))
    if bad_label:
        _image(masks[0], np.full((64, 80), 200, np.uint8))
    return copy


def _nan_onnx(source, path):
    """A graph with segdeploy metadata whose logits are NaN."""
    meta = onnx.load(source).metadata_props
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)
    nan = helper.make_tensor("nan", TensorProto.FLOAT, [1, 6, 1, 1], [float("nan")] * 6)
    nodes = [helper.make_node("ReduceMean", ["input"], ["m"], axes=[1], keepdims=1),
             helper.make_node("Mul", ["m", "nan"], ["logits"])]
    graph = helper.make_graph(nodes, "nan", [x], [y], [nan])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.metadata_props.extend(meta)
    onnx.save(model, path)
    return path


# (id, args(t) -> CLI arguments, exit code, fragment of the error line); t gives paths and fixtures.
CASES = [
    # export
    ("export-missing-checkpoint", lambda t: ["export", t.dir / "none.pt", "-o", t.out], 3, "not found"),
    ("export-empty-checkpoint", lambda t: ["export", t.touch("e.pt"), "-o", t.out], 3, "e.pt"),
    ("export-random-checkpoint", lambda t: ["export", _random_bytes(t.dir / "r.pt"), "-o", t.out], 3, "r.pt"),
    ("export-truncated-checkpoint", lambda t: ["export", _truncated(t.torch, t.dir / "t.pt"), "-o", t.out], 3,
     "t.pt"),
    ("export-pickled-code", lambda t: ["export", t.pickled, "-o", t.out], 3, "code.pt"),
    ("export-zero-size", lambda t: ["export", "unet_tiny", "--input-size", "0x10", "-o", t.out], 3, "0x10"),
    ("export-bad-size", lambda t: ["export", "unet_tiny", "--input-size", "big", "-o", t.out], 3, "HxW"),
    ("export-old-opset", lambda t: ["export", "unet_tiny", "--opset", "9", "-o", t.out], 3, "opset"),
    ("export-unknown-preset", lambda t: ["export", "unet_huge", "-o", t.out], 3, "unet_huge"),
    ("export-unknown-option", lambda t: ["export", "unet_tiny", "--colour", "red"], 2, ""),
    # quantize
    ("quantize-missing-onnx", lambda t: ["quantize", t.dir / "n.onnx", "--precision", "fp16", "-o", t.out], 3,
     "not found"),
    ("quantize-random-onnx", lambda t: ["quantize", _random_bytes(t.dir / "r.onnx"), "--precision", "fp16",
                                        "-o", t.out], 3, "is not an ONNX model: it is unrecognised binary data"),
    ("quantize-truncated-onnx", lambda t: ["quantize", _truncated(t.onnx, t.dir / "t.onnx"), "--precision", "fp16",
                                           "-o", t.out], 3, "t.onnx"),
    ("quantize-no-metadata", lambda t: ["quantize", _onnx_with_metadata(t.onnx, t.dir / "m.onnx", None),
                                        "--precision", "fp16", "-o", t.out], 3, "no segdeploy metadata"),
    ("quantize-foreign-metadata", lambda t: ["quantize", _onnx_with_metadata(t.onnx, t.dir / "m.onnx", '{"x": 1}'),
                                             "--precision", "fp16", "-o", t.out], 3, "metadata"),
    ("quantize-int8-without-calib", lambda t: ["quantize", t.onnx, "--precision", "int8", "-o", t.out], 3,
     "--calib"),
    ("quantize-missing-calib", lambda t: ["quantize", t.onnx, "--precision", "int8", "--calib", t.dir / "nope",
                                          "-o", t.out], 3, "nope"),
    ("quantize-empty-calib", lambda t: ["quantize", t.onnx, "--precision", "int8", "--calib", t.mkdir("empty"),
                                        "-o", t.out], 3, "empty"),
    ("quantize-unknown-precision", lambda t: ["quantize", t.onnx, "--precision", "int4", "-o", t.out], 2, ""),
    ("quantize-unknown-method", lambda t: ["quantize", t.onnx, "--precision", "int8", "--method", "magic",
                                           "-o", t.out], 2, ""),
    ("quantize-unknown-module", lambda t: ["quantize", t.onnx, "--precision", "int8", "--calib", t.scenes,
                                           "--exclude-modules", "nope", "-o", t.out], 3, "matches no node"),
    # build
    ("build-missing-onnx", lambda t: ["build", t.dir / "n.onnx", "-o", t.dir / "m.engine"], 3, "not found"),
    ("build-bad-shape", lambda t: ["build", t.onnx, "--max-shape", "1x3x64", "-o", t.dir / "m.engine"], 3,
     "NxCxHxW"),
    ("build-wrong-input-name", lambda t: ["build", t.onnx, "--opt-shape", "images:1x3x64x64",
                                          "-o", t.dir / "m.engine"], 3, "model's input is"),
    ("build-bad-suffix", lambda t: ["build", t.onnx, "-o", t.dir / "m.bin"], 3, ".engine"),
    # predict
    ("predict-missing-artifact", lambda t: ["predict", t.dir / "n.onnx", t.png, "-o", t.out], 3, "not found"),
    ("predict-unknown-artifact", lambda t: ["predict", t.touch("m.tflite"), t.png, "-o", t.out], 3,
     "unknown artifact type"),
    ("predict-random-ir", lambda t: ["predict", _random_bytes(t.dir / "m.xml"), t.png, "-o", t.out], 3, "m.xml"),
    ("predict-empty-engine", lambda t: ["predict", t.touch("m.engine"), t.png, "-o", t.out], 3, "empty"),
    ("predict-engine-no-manifest", lambda t: ["predict", t.write("m.engine", "plan"), t.png, "-o", t.out], 3,
     "no manifest"),
    ("predict-engine-foreign-manifest", lambda t: ["predict", t.engine_with_manifest('{"format": "other"}'),
                                                   t.png, "-o", t.out], 3, "is not a segdeploy engine manifest"),
    ("predict-empty-folder", lambda t: ["predict", t.onnx, t.mkdir("nothing"), "-o", t.out], 3, "holds no images"),
    ("predict-missing-input", lambda t: ["predict", t.onnx, t.dir / "none.png", "-o", t.out], 3, "not found"),
    ("predict-text-as-png", lambda t: ["predict", t.onnx, t.write("fake.png", "not an image"), "-o", t.out], 3,
     "fake.png"),
    ("predict-float-tiff", lambda t: ["predict", t.onnx, _image(t.dir / "d.tiff", np.full((8, 8), 0.5, np.float32)),
                                      "-o", t.out], 3, "float32 images are not supported; convert to 8-bit"),
    ("predict-huge-native", lambda t: ["predict", t.onnx, _image(t.dir / "huge.png",
                                                                 np.zeros((10000, 10000), np.uint8)),
                                       "-o", t.out], 3, "--tile"),
    ("predict-nan-output", lambda t: ["predict", _nan_onnx(t.onnx, t.dir / "nan.onnx"), t.png, "-o", t.out], 1,
     "NaN"),
    ("predict-bad-overlap", lambda t: ["predict", t.onnx, t.png, "--overlap", "1.5", "-o", t.out], 3, "overlap"),
    ("predict-cpu-engine", lambda t: ["predict", t.engine_with_manifest(None), t.png, "--device", "cpu",
                                      "-o", t.out], 3, "GPU"),
    # bench
    ("bench-zero-iters", lambda t: ["bench", "--engine", t.onnx, "--iters", "0"], 2, ""),
    ("bench-negative-warmup", lambda t: ["bench", "--engine", t.onnx, "--warmup", "-2"], 2, ""),
    ("bench-iters-and-duration", lambda t: ["bench", "--engine", t.onnx, "--iters", "3", "--duration", "2s"], 2,
     "not both"),
    ("bench-missing-engine", lambda t: ["bench", "--engine", t.dir / "n.onnx"], 3, "not found"),
    ("bench-bad-spec-option", lambda t: ["bench", "--engine", f"{t.onnx}@onnxruntime:f32"], 2, "does not apply"),
    ("bench-empty-split", lambda t: ["bench", "--engine", t.onnx, "--data", t.scenes, "--split", "test"], 3,
     "test"),
    ("bench-mask-size-mismatch", lambda t: ["bench", "--engine", t.onnx, "--data",
                                            _dataset(t.scenes, size_mismatch=True), "--iters", "1"], 3, "mask is"),
    ("bench-label-out-of-range", lambda t: ["bench", "--engine", t.onnx, "--data",
                                            _dataset(t.scenes, bad_label=True), "--iters", "1"], 3, "outside"),
    ("bench-negative-size", lambda t: ["bench", "--engine", t.onnx, "--input-size", "-64x80"], 3, "positive"),
    # train
    ("train-missing-data", lambda t: ["train", "--data", t.dir / "none", "--arch", "unet_tiny", "-o", t.out], 3,
     "none"),
    ("train-unknown-arch", lambda t: ["train", "--data", t.scenes, "--arch", "resnet", "-o", t.out], 3, "resnet"),
    ("train-zero-epochs", lambda t: ["train", "--data", t.scenes, "--arch", "unet_tiny", "--epochs", "0",
                                     "-o", t.out], 3, "epochs"),
    # info
    ("info-missing", lambda t: ["info", t.dir / "none.onnx"], 3, "not found"),
    ("info-random-onnx", lambda t: ["info", _random_bytes(t.dir / "r.onnx")], 3, "r.onnx"),
    ("info-pickled-code", lambda t: ["info", t.pickled], 3, "code.pt"),
]


class Inputs:
    """Paths a case can use; everything lands in ``dir``; ``out`` must never appear."""

    def __init__(self, folder, artifacts, scenes):
        self.dir, self.out = folder, folder / "out.onnx"
        self.onnx, self.torch, self.scenes = artifacts["onnxruntime"], artifacts["torch"], scenes
        self.png = _image(folder / "x.png", np.full((64, 80, 3), 90, np.uint8))
        self.pickled = folder / "code.pt"
        self.pickled.write_bytes(pickle.dumps({"state_dict": CodePayload()}))

    def touch(self, name):
        (self.dir / name).write_bytes(b"")
        return self.dir / name

    def write(self, name, text):
        (self.dir / name).write_text(text)
        return self.dir / name

    def mkdir(self, name):
        (self.dir / name).mkdir()
        return self.dir / name

    def engine_with_manifest(self, text):
        from segdeploy.artifact_meta import read_artifact_meta

        engine = self.write("m.engine", "plan")
        if text is None:
            from segdeploy.engine_manifest import EngineManifest, Environment, write_manifest

            environment = Environment("11.4.0", "13.0", "NVIDIA H100", (9, 0), "linux", "x86_64")
            write_manifest(EngineManifest(read_artifact_meta(self.onnx).to_dict(), environment, [], "fp32", "", "",
                                          0.0, False, "none"), engine)
        else:
            (self.dir / "m.engine.json").write_text(text)
        return engine


@pytest.mark.parametrize("case_id, make_args, code, fragment", CASES, ids=[case[0] for case in CASES])
def test_bad_input(case_id, make_args, code, fragment, artifacts, scenes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = Inputs(tmp_path, artifacts, scenes)
    result = runner.invoke(app, [str(arg) for arg in make_args(inputs)])
    assert result.exit_code == code, (case_id, result.output)
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, case_id
    if code != 2:  # typer's own usage errors have their own box; ours are one "error:" line
        assert lines[-1].startswith("error:") and fragment in lines[-1], (case_id, lines[-1])
    elif fragment:
        assert fragment in result.stderr, (case_id, result.stderr)
    assert not inputs.out.exists() and not (tmp_path / "out").exists()
    assert not (tmp_path / SIDE_EFFECT_FILE).exists()  # the pickled payload never ran


def test_battery_is_large_enough():
    assert len(CASES) >= 40


def test_api_raises_typed_errors(artifacts, tmp_path):
    from segdeploy import Segmenter

    with pytest.raises(BadInputError):
        Segmenter(_random_bytes(tmp_path / "r.onnx"))
    with pytest.raises(CheckFailedError, match="NaN"):
        Segmenter(_nan_onnx(artifacts["onnxruntime"], tmp_path / "nan.onnx")).predict(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(BadInputError, match="8-bit"):
        Segmenter(artifacts["onnxruntime"]).predict(np.zeros((8, 8), np.uint16))


def test_json_is_not_written_on_bad_input(artifacts, tmp_path):
    result = runner.invoke(app, ["quantize", str(artifacts["onnxruntime"]), "--precision", "int8", "-o",
                                 str(tmp_path / "q.onnx"), "--json", str(tmp_path / "r.json")])
    assert result.exit_code == 3 and not (tmp_path / "r.json").exists()
