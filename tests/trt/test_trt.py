"""TensorRT build: everything that runs without TensorRT, and the tensorrt-marked engine tests."""

import dataclasses
import importlib.util
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.engine_manifest import (
    EngineManifest,
    Environment,
    check_plan_hash,
    incompatibility,
    read_manifest,
    write_manifest,
)
from segdeploy.errors import BadInputError
from segdeploy.fileio import sha256_file
from segdeploy.metadata import ResizePolicy, new_meta
from segdeploy.trt.builder import BuildConfig, plan_build
from segdeploy.trt.profiles import Profile, default_profile, parse_shape, validate_profile

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
H100 = Environment("11.4.0.106", "13.0", "NVIDIA H100", (9, 0), "linux", "x86_64")


def _meta(**preprocess):
    meta = new_meta("unet_tiny", {}, 4)
    return meta.replace(preprocess=dataclasses.replace(meta.preprocess, eval_size=(360, 480), **preprocess))


@pytest.mark.parametrize("text, shape", [("1x3x360x480", (1, 3, 360, 480)), ("input:2x3x64x96", (2, 3, 64, 96))])
def test_parse_shape(text, shape):
    assert parse_shape(text, "input") == shape


@pytest.mark.parametrize("text, message", [("1x3x360", "NxCxHxW"), ("images:1x3x8x8", "model's input is"),
                                           ("0x3x8x8", "zero dimension"), ("1,3,8,8", "NxCxHxW")])
def test_bad_shapes(text, message):
    with pytest.raises(BadInputError, match=message):
        parse_shape(text, "input")


def test_default_profile_respects_the_divisor():
    profile = default_profile(_meta(), None)
    assert profile.opt == (1, 3, 360, 480) and profile.min == (1, 3, 160, 224) and profile.max == (4, 3, 736, 960)
    assert all(side % 32 == 0 for shape in (profile.min, profile.max) for side in shape[2:])
    assert default_profile(_meta(), (1, 3, 360, 480)) == Profile("input", *[(1, 3, 360, 480)] * 3)


def test_profile_validation():
    meta = _meta()
    with pytest.raises(BadInputError, match="min <= opt <= max"):
        validate_profile(Profile("input", (1, 3, 64, 64), (1, 3, 32, 32), (1, 3, 128, 128)), meta, None)
    with pytest.raises(BadInputError, match="3 channels"):
        validate_profile(Profile("input", (1, 1, 64, 64), (1, 1, 64, 64), (1, 1, 64, 64)), meta, None)
    with pytest.raises(BadInputError, match="static input"):
        validate_profile(Profile("input", (1, 3, 64, 64), (1, 3, 64, 64), (1, 3, 128, 128)), meta, (1, 3, 64, 64))
    with pytest.raises(BadInputError, match="multiples of 32"):
        validate_profile(Profile("input", (1, 3, 50, 64), (1, 3, 64, 64), (1, 3, 128, 128)),
                         _meta(resize_policy=ResizePolicy.KEEP), None)


def test_plan_build_validates_before_tensorrt(unet_export, tmp_path):
    onnx_path = unet_export[2].output
    _, meta, profile = plan_build(onnx_path, BuildConfig(max_shape="2x3x512x640"))
    assert profile.max == (2, 3, 512, 640) and profile.opt == (1, *(3,), *meta.preprocess.eval_size)
    with pytest.raises(BadInputError, match="opt-level"):
        plan_build(onnx_path, BuildConfig(opt_level=9))
    (tmp_path / "x.onnx").write_bytes(b"garbage")
    with pytest.raises(BadInputError, match="is not an ONNX model: it is a text file"):
        plan_build(tmp_path / "x.onnx", BuildConfig())


def _manifest(**changes):
    fields = dict(meta=_meta().to_dict(), built_on=H100, profiles=[], precision="fp32", onnx_sha256="a",
                  plan_sha256="b", build_seconds=1.0, version_compatible=False, hardware_compatibility="none")
    return EngineManifest(**{**fields, **changes})


@pytest.mark.parametrize("manifest, current, fragment", [
    (_manifest(), H100, None),
    (_manifest(), dataclasses.replace(H100, tensorrt="11.4.1.0"), "TensorRT 11.4.0.106, this machine has 11.4.1.0"),
    (_manifest(version_compatible=True), dataclasses.replace(H100, tensorrt="11.5.0.1"), None),
    (_manifest(version_compatible=True), dataclasses.replace(H100, tensorrt="11.3.0.1"), "TensorRT"),
    (_manifest(built_on=dataclasses.replace(H100, tensorrt="10.16.0.1"), version_compatible=True), H100, None),
    (_manifest(), dataclasses.replace(H100, gpu="NVIDIA L4", compute_capability=(8, 9)), "compute capability 9.0"),
    (_manifest(hardware_compatibility="ampere_plus"), dataclasses.replace(H100, compute_capability=(8, 6)), None),
    (_manifest(hardware_compatibility="ampere_plus"), dataclasses.replace(H100, compute_capability=(7, 5)),
     "compute capability"),
    (_manifest(), dataclasses.replace(H100, arch="aarch64"), "linux/x86_64"),
])
def test_compatibility_decisions(manifest, current, fragment):
    reason = incompatibility(manifest, current)
    assert (reason is None) if fragment is None else (fragment in reason and "segdeploy build" in reason)


def test_manifest_round_trip_and_hash_check(tmp_path):
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan bytes")
    manifest = _manifest(plan_sha256=sha256_file(engine))
    write_manifest(manifest, engine)
    assert read_manifest(engine) == manifest and read_manifest(engine).artifact_meta().num_classes == 4
    check_plan_hash(manifest, engine)
    engine.write_bytes(b"another plan")
    with pytest.raises(BadInputError, match="does not match its manifest"):
        check_plan_hash(manifest, engine)
    (tmp_path / "m.engine.json").write_text("{}")
    with pytest.raises(BadInputError, match="is not a segdeploy engine manifest"):
        read_manifest(engine)
    # Untrusted: each field is checked for its type, not discovered broken later as a TypeError.
    data = json.loads(manifest.to_json())
    for key, value, message in (("built_on", [], "'built_on' must be dict, not list"),
                                ("version_compatible", 1, "'version_compatible' must be bool, not int"),
                                ("hardware_compatibility", "any", "hardware_compatibility 'any' is not one of"),
                                # no digits: _major() raised IndexError (found by fuzzing)
                                ("built_on", {**data["built_on"], "tensorrt": "x"}, "must be a version")):
        (tmp_path / "m.engine.json").write_text(json.dumps({**data, key: value}))
        with pytest.raises(BadInputError, match=message):
            read_manifest(engine)
    (tmp_path / "m.engine.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInputError, match="its JSON nests too deeply"):
        read_manifest(engine)


@pytest.mark.skipif(HAS_TENSORRT, reason="TensorRT is installed")
def test_build_without_tensorrt_is_exit_4_after_input_checks(unet_export, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["build", str(tmp_path / "none.onnx")])
    assert missing.exit_code == 3 and "not found" in missing.stderr
    result = runner.invoke(app, ["build", str(unet_export[2].output), "-o", str(tmp_path / "m.engine")])
    assert result.exit_code == 4 and "pip install 'segdeploy[tensorrt]'" in result.stderr
    assert "NVIDIA GPU" in result.stderr and not (tmp_path / "m.engine").exists()


@pytest.mark.tensorrt
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
def test_engine_agrees_with_onnxruntime(precision, artifacts, scenes, tmp_path):
    """On a machine with TensorRT and a GPU: tiny U-Net engines from fp32, fp16 and int8 ONNX."""
    from segdeploy.quantize.config import AccuracyGate, Fp16Config, QuantConfig
    from segdeploy.quantize.fp16 import convert_fp16
    from segdeploy.quantize.int8 import quantize_int8
    from segdeploy.runtime.segmenter import Segmenter
    from segdeploy.trt.builder import build_engine

    source = artifacts["onnxruntime"]
    onnx_path = tmp_path / f"{precision}.onnx"
    gate = AccuracyGate(max_miou_drop=100, min_agreement=0)
    if precision == "fp16":
        convert_fp16(source, onnx_path, Fp16Config(gate=gate))
    elif precision == "int8":
        quantize_int8(source, onnx_path, str(scenes), QuantConfig(num_images=8, gate=gate))
    else:
        onnx_path = source
    build_engine(onnx_path, tmp_path / "m.engine", BuildConfig(min_shape="1x3x32x32", opt_shape="1x3x64x80",
                                                                max_shape="2x3x128x160"))
    images = [np.random.default_rng(i).integers(0, 256, (64, 80, 3), dtype=np.uint8) for i in range(3)]
    with Segmenter(tmp_path / "m.engine") as engine, Segmenter(onnx_path) as reference:
        agreement = np.mean([np.mean(engine.predict(image) == reference.predict(image)) for image in images])
    assert agreement >= (0.999 if precision == "fp32" else 0.98)
