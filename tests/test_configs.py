"""Every stage's frozen config checks itself: library callers get the CLI's one-line errors."""

import pytest

from segdeploy.errors import BadInputError
from segdeploy.export.config import ExportConfig
from segdeploy.metadata import InputLayout, Precision
from segdeploy.quantize.config import CpuActivations, QuantConfig, Target
from segdeploy.runtime.predict import MaskFormat, PredictConfig
from segdeploy.train.config import Schedule, TrainConfig
from segdeploy.trt.builder import BuildConfig, build_engine


@pytest.mark.parametrize("make, message", [
    (lambda: QuantConfig(cpu_activations="s9"), "--cpu-activations must be one of u8, s8, got 's9'"),
    (lambda: QuantConfig(target="gpu"), "--target must be one of tensorrt, cpu"),
    (lambda: QuantConfig(method="mean"), "--method must be one of minmax, entropy, percentile"),
    (lambda: QuantConfig(select="first"), "--select must be one of random, class-balanced"),
    (lambda: QuantConfig(high_precision="bf16"), "--high-precision must be one of fp16, fp32"),
    (lambda: QuantConfig(precision="int4"), "--precision must be one of fp32, fp16, int8, int8-dynamic"),
    (lambda: QuantConfig(num_images=0), "--num-images must be >= 1"),
    (lambda: QuantConfig(percentile=101), r"--percentile must be in \[0.0, 100.0\]"),
    (lambda: TrainConfig(data="d", arch="a", output="o", schedule="cosne"), "--schedule must be one of poly, cosine"),
    (lambda: TrainConfig(data="d", arch="a", output="o", loss="l2"), "--loss must be one of"),
    (lambda: TrainConfig(data="d", arch="a", output="o", input_size=(0, 10)), "--input-size must be >= 1"),
    (lambda: ExportConfig(input_layout="NWHC"), "--input-layout must be one of NCHW, NHWC"),
    (lambda: ExportConfig(input_layout="NHWC"), "NHWC input needs --fuse-normalize"),
    (lambda: ExportConfig(opset=11), "--opset 11 is too old"),
    (lambda: BuildConfig(hardware_compat="turing"), "--hardware-compat must be one of none, ampere_plus"),
    (lambda: BuildConfig(opt_level=7), r"--opt-level must be in \[0, 5\]"),
    (lambda: PredictConfig(mask_format="jpeg"), "--mask-format must be one of palette, ids"),
    (lambda: PredictConfig(alpha=2.0), r"--alpha must be in \[0.0, 1.0\]"),
])
def test_invalid_choices_and_ranges_are_one_bad_input_line(make, message):
    with pytest.raises(BadInputError, match=message) as failure:
        make()
    assert "\n" not in str(failure.value)


def test_strings_become_the_core_enums():
    config = QuantConfig(precision="int8-dynamic", target="cpu", cpu_activations="s8")
    assert (config.precision, config.target, config.cpu_activations) == (Precision.INT8_DYNAMIC, Target.CPU,
                                                                         CpuActivations.S8)
    assert TrainConfig(data="d", arch="a", output="o", schedule="cosine").schedule is Schedule.COSINE
    assert ExportConfig(input_layout="NHWC", fuse_normalize=True).input_layout is InputLayout.NHWC
    assert PredictConfig(mask_format="ids").mask_format is MaskFormat.IDS
    assert f"{config.target}" == "cpu"  # str Enums print as their values in messages


def test_build_refuses_an_engine_suffix_the_runtime_would_not_recognise(tmp_path):
    with pytest.raises(BadInputError, match="engine files end in .engine, .trt or .plan, got m.onnx"):
        build_engine(tmp_path / "missing.onnx", tmp_path / "m.onnx")


def test_bounds_found_by_the_cli_fuzz_hold_for_api_users_too():
    from segdeploy.errors import check_range
    from segdeploy.export.config import newest_opset
    from segdeploy.runtime.artifacts import BackendOptions
    from segdeploy.sizes import parse_hw

    with pytest.raises(BadInputError, match="must be a number, got nan"):
        check_range(float("nan"), "--lr", low=0.0)
    with pytest.raises(BadInputError, match="newer than the installed onnx knows"):
        ExportConfig(opset=newest_opset() + 1)
    for threads in (0, 100_000):
        with pytest.raises(BadInputError, match="threads must be in"):
            BackendOptions(threads=threads)
    with pytest.raises(BadInputError, match="over 4096 pixels on a side"):
        parse_hw("99999x99999")  # info would have profiled a 120 GB input
