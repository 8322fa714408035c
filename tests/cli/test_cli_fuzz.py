"""Hypothesis over the CLI: random values for every option of every command, in-process.

The options are not listed here: they are read from the command objects typer builds
(``typer.main.get_command(app)``), so an option added later is fuzzed without touching this
file; a value pool is chosen from the type each parameter is declared with (int, float, enum, path, flag) and,
for strings, from its name (sizes, shapes, budgets, artifacts).

Every run must end as the conventions table says: exit 0-4, never 70 ("internal error", a bug
in segdeploy), no traceback, and for 3/4 one last stderr line starting with ``error:``.

What a valid but huge value would start is stubbed after the options were validated: each
stub sits below the command's config dataclass (whose ``__post_init__`` checks ranges), below
the cheap checks of the library function (paths, metadata, choices) and above the heavy work
(export, calibration, training, timing, TensorRT). A run that gets that far ends with the
sentinel ``StubReached`` (exit 0). ``info``, ``calibration-set`` and ``predict`` (on a 1x1-conv
ONNX and an 8x10 image) run for real; only an absurd GFLOP size or thread count is stubbed.
"""

from __future__ import annotations

import enum
import types
import typing
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper
from typer.main import get_command
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.errors import SegdeployError

runner = CliRunner()
GROUP = get_command(app)
COMMANDS = ["export", "adopt", "quantize", "build", "predict", "serve", "bench", "train", "calibration-set", "info",
            "demo"]
DOCUMENTED_CODES = {0, 1, 2, 3, 4}
HUGE_INT = "99999999999999999999"  # > 2**64


class StubReached(SegdeployError):
    """The run got past validation to the heavy work this test does not do."""

    exit_code = 0


def _stub(what):
    def stub(*args, **kwargs):
        raise StubReached(f"stub reached: {what}")

    return stub


# --------------------------------------------------------------------------- small real inputs

def _tiny_onnx(path):
    """A 1x1 convolution with segdeploy metadata (3 classes, eval 32x32): valid for every command, ms to run."""
    from segdeploy.artifact_meta import attach_metadata
    from segdeploy.metadata import Preprocess, new_meta

    n = 3
    meta = new_meta("unet_tiny", {"num_classes": n}, n, preprocess=Preprocess(eval_size=(32, 32), divisor=1))
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", n, "h", "w"])
    weights = np.random.default_rng(0).normal(size=n * 3).tolist()
    w = helper.make_tensor("w", TensorProto.FLOAT, [n, 3, 1, 1], weights)
    graph = helper.make_graph([helper.make_node("Conv", ["input", "w"], ["logits"])], "tiny", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(attach_metadata(model, meta), path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Paths the value pools draw from: real small artifacts and every kind of bad path."""
    from segdeploy.data.synthetic import write_synthetic_dataset
    from segdeploy.models.checkpoint import load_model, save_checkpoint

    root = tmp_path_factory.mktemp("fuzz")
    (root / "work").mkdir()
    (root / "empty dir").mkdir()
    onnx_path = _tiny_onnx(root / "tiny.onnx")
    model, meta = load_model("unet_tiny", num_classes=3)
    save_checkpoint(model, root / "tiny.pt", meta)
    cv2.imwrite(str(root / "img.png"), np.random.default_rng(0).integers(0, 255, (8, 10, 3), np.uint8))
    dataset = write_synthetic_dataset(root / "ds", {"train": 4, "val": 2}, size=(8, 10))
    (root / "garbage.bin").write_bytes(np.random.default_rng(1).integers(0, 256, 512, np.uint8).tobytes())
    (root / "bad.toml").write_text("source = [unclosed\n")
    (root / "calib.json").write_text('{"images": 5}')
    real = {"onnx": str(onnx_path), "pt": str(root / "tiny.pt"), "image": str(root / "img.png"),
            "data": str(dataset), "dir": str(root / "empty dir")}
    bad = [
        str(root / "missing.onnx"), str(root / "no such dir" / "x.onnx"), "/proc/foo.onnx", "/proc/self/x",
        "/proc/self/x.json", str(root / "sp ace ünï 名前.onnx"), str(root / "garbage.bin"), str(root / "bad.toml"),
        str(root / "calib.json"), "", ".", str(root / "empty dir"), "/", "-",
    ]
    return {"root": root, "work": root / "work", "real": real, "bad": bad}


# --------------------------------------------------------------------------- value pools per option

# Each pool is (usual, unusual): usual values parse (or are real files) and are mostly odd but valid-looking,
# so that a run gets past typer to segdeploy's own checks; unusual ones (1 draw in 6) do not parse or are bad paths.
SIZES = (["0x0", "-1x5", "99999x99999", "1x1", "8x10", "16x16,0x1", "８x８", "8 x 10"],
         ["abc", "", "x", "1.5x2", ",", "8x10,abc"])
SHAPES = (["1x3x8x8", "0x3x8x8", "-1x3x8x8", "input:1x3x8x8", "nope:1x3x8x8", "1x3x99999x99999"], ["abc", "", "1x3x8"])
INTS = (["-1", "0", "1", "2", HUGE_INT, "-" + HUGE_INT], ["abc", "", "1.5", "nan"])
FLOATS = (["nan", "inf", "-inf", "-1", "1e308", "1e309", "0", "0.5", "1", "1e-320"], ["abc", ""])
BUDGETS = (["0", "1", "-1", "2s", "0s", "-2s", "1e308s", "1e309", HUGE_INT], ["nans", "infs", "abc", ""])
STRINGS = (["abc", "ünï code", "a,b,,c", "stem,down.0", "名前", "unet_tiny"], ["", " ", ",", "-x"])
ARCHS = (["unet_tiny", "resnet50", "UNET_TINY"], ["", "unet_tiny ", "../unet_tiny"])
TRIPLES = (["0.5,0.5,0.5", "0,0,0", "1,2", "nan,1,1", "-1,1e309,1", "1,2,3,4"], ["abc", "", ",,", "1;2;3"])


def _paths(world, *kinds):
    return [world["real"][kind] for kind in kinds], world["bad"]


def _string_pool(name, world):
    """Values for a str parameter, by what its name says it holds."""
    if "size" in name or name == "tile":
        return SIZES
    if name.endswith("shape"):
        return SHAPES
    if name in ("warmup", "duration"):
        return BUDGETS
    if name == "arch":
        return ARCHS
    if name in ("source", "artifact"):  # export SOURCE, info ARTIFACT, bench --artifact SPEC
        specs = [f"{world['real']['onnx']}@{b}" for b in ("openvino:f32", "torch", "nope", "onnxruntime:x", "")]
        return [world["real"]["onnx"], world["real"]["pt"], "unet_tiny"], [*world["bad"], *ARCHS[1], *specs]
    if name == "calib":
        return _paths(world, "data", "dir", "image")
    if name in ("split", "val_split", "eval_split"):
        return ["train", "val", "nope"], ["", "../train", "ünï"]
    if name == "device":
        return ["cpu", "cuda"], ["abc", "", "cuda:99"]
    if name == "classes":
        return ["camvid", "voc", "ade20k", "kitti", world["real"]["image"]], world["bad"]
    if name in ("mean", "std"):
        return TRIPLES
    return STRINGS


def _path_pool(name, world):
    if name in ("data", "eval_data"):
        return _paths(world, "data", "dir", "image")
    if name in ("model", "artifact", "reference", "teacher", "resume"):
        return _paths(world, "onnx", "pt")
    if name == "inputs":
        return _paths(world, "image", "dir", "data")
    # outputs (-o, --json, --markdown, --plots, --timing-cache, --recipe): new files and every bad place
    work = world["work"]
    return ([str(work / "out.onnx"), str(work / "out.xml"), str(work / "out.json"), str(work / "out.engine"),
             str(work / "out.pt"), str(work / "ü n")], world["bad"])


def _annotation(param):
    """The value type of a typer parameter: ``X`` for ``X``, ``X | None`` and ``list[X]``.

    typer (0.29) builds its parameters on its own click; their types are the function's annotations."""
    kind = param.type_descriptor.annotation
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    if typing.get_origin(kind) is list:
        kind = typing.get_args(kind)[0]
    return kind


def _pool(param, world) -> tuple[list[str], list[str]]:
    kind = _annotation(param)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(member.value) for member in kind], ["abc", "", "INT8"]
    if kind is int:
        return INTS
    if kind is float:
        return FLOATS
    if kind is Path:
        return _path_pool(param.name, world)
    if kind is str:
        return _string_pool(param.name, world)
    raise AssertionError(f"{param.name}: no value pool for {kind!r}; add one to this test")


@st.composite
def values(draw, param, world):
    usual, unusual = _pool(param, world)
    return draw(st.sampled_from(unusual if draw(st.integers(0, 5)) == 0 else usual))


@st.composite
def command_lines(draw, name, world):
    """Arguments for ``name``: its positional arguments, then each option present or not, in random order."""
    command = GROUP.commands[name]
    args, options = [], []
    for param in command.params:
        if param.param_type_name == "argument":
            if param.required or draw(st.booleans()):
                count = draw(st.integers(1, 2)) if param.nargs == -1 else 1
                args += [draw(values(param, world)) for _ in range(count)]
            continue
        present = draw(st.integers(0, 9)) > 0 if param.required else draw(st.integers(0, 9)) < 2
        if param.hidden or param.name == "help" or not present:
            continue
        if param.is_flag:
            options.append([draw(st.sampled_from([*param.opts, *param.secondary_opts]))])
            continue
        count = draw(st.integers(1, 2)) if param.multiple else 1
        for _ in range(count):
            options.append([draw(st.sampled_from(param.opts)), draw(values(param, world))])
    options = draw(st.permutations(options)) if options else []
    globals_ = draw(st.lists(st.sampled_from(["--quiet", "--verbose"]), max_size=2, unique=True))
    # "--" keeps a positional value such as "-1x5" or "-" from being read as an option.
    return [*globals_, name, *(token for option in options for token in option), "--", *args]


# --------------------------------------------------------------------------- stubs below validation

@pytest.fixture
def stubbed(monkeypatch, world):
    """Stubs above each command's heavy work; cwd in a scratch folder (default outputs land there)."""
    import segdeploy.bench.runner
    import segdeploy.demo
    import segdeploy.export.onnx_export
    import segdeploy.export.openvino_ir
    import segdeploy.models.profile
    import segdeploy.quantize.dynamic
    import segdeploy.quantize.fp16
    import segdeploy.quantize.int8
    import segdeploy.quantize.openvino_int8
    import segdeploy.runtime.artifacts
    import segdeploy.serve.batch
    import segdeploy.serve.server
    import segdeploy.train.trainer
    import segdeploy.trt.builder

    monkeypatch.chdir(world["work"])
    monkeypatch.delenv("SEGDEPLOY_DEBUG", raising=False)
    # export: load_model (SOURCE, --arch, --num-classes) and ExportConfig run; tracing does not.
    monkeypatch.setattr(segdeploy.export.onnx_export, "export_onnx", _stub("export_onnx"))
    monkeypatch.setattr(segdeploy.export.openvino_ir, "export_model_to_openvino", _stub("export_model_to_openvino"))
    monkeypatch.setattr(segdeploy.export.openvino_ir, "export_openvino", _stub("export_openvino"))
    # quantize: QuantConfig and quantize_onnx's dispatch run; each precision's worker does not.
    for module, function in ((segdeploy.quantize.fp16, "convert_fp16"), (segdeploy.quantize.dynamic,
                             "quantize_dynamic"), (segdeploy.quantize.int8, "quantize_int8"),
                             (segdeploy.quantize.openvino_int8, "quantize_openvino")):
        monkeypatch.setattr(module, function, _stub(function))
    # build: BuildConfig and plan_build (ONNX, metadata, profile) run; TensorRT is never imported.
    monkeypatch.setattr(segdeploy.trt.builder, "require", _stub("tensorrt"))
    # bench: specs, metadata and comparability run; samples, backends and timing do not.
    monkeypatch.setattr(segdeploy.bench.runner, "_samples", _stub("bench samples"))
    # train: TrainConfig runs; train_model (thread count, seeding, data, the epochs) does not.
    monkeypatch.setattr(segdeploy.train.trainer, "train_model", _stub("train_model"))
    monkeypatch.setattr(segdeploy.demo, "run_demo", _stub("run_demo"))
    # serve: ServeConfig and the API key's reading run; Ray never starts. predict --ray: its checks run, Ray does not.
    monkeypatch.setattr(segdeploy.serve.server, "serve_artifact", _stub("serve_artifact"))
    monkeypatch.setattr(segdeploy.serve.batch, "_segment_on_ray", _stub("ray"))
    # info: real, but no forward pass at an absurd size (a real 99999x99999 image is 120 GB).
    real_profile = segdeploy.models.profile.profile_model

    def profile_model(model, input_size, *args, **kwargs):
        if input_size[0] * input_size[1] > 64 * 64 or next(model.parameters()).is_meta:  # presets: seconds each
            return segdeploy.models.profile.ModelProfile(0, 0.0, tuple(input_size))
        return real_profile(model, input_size, *args, **kwargs)

    monkeypatch.setattr(segdeploy.models.profile, "profile_model", profile_model)
    # predict: real, but no process-wide torch threads or a 10**5-thread ONNX Runtime pool.
    real_make_backend = segdeploy.runtime.artifacts.make_backend

    def make_backend(path, kind, device, options):
        if options.threads is not None and options.threads > 4:
            raise StubReached(f"stub reached: {options.threads} threads")
        return real_make_backend(path, kind, device, options)

    monkeypatch.setattr(segdeploy.runtime.artifacts, "make_backend", make_backend)


# --------------------------------------------------------------------------- the checks

def invoke(args):
    return runner.invoke(app, [str(arg) for arg in args])


def assert_clean(result, args):
    where = f"segdeploy {' '.join(map(repr, args))} -> exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), (where, result.exception)
    assert result.exit_code != 70 and "internal error" not in result.output, where
    assert result.exit_code in DOCUMENTED_CODES, where
    assert "Traceback" not in result.output, where
    if result.exit_code in (3, 4) or (result.exit_code == 1 and "error:" in result.stderr):
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert lines and lines[-1].startswith("error:"), where
        assert sum(line.startswith("error:") for line in lines) == 1, where


def test_every_command_is_fuzzed():
    """A command added to the app must be added to COMMANDS (and so fuzzed)."""
    visible = {name for name, command in GROUP.commands.items() if not command.hidden}
    assert visible == set(COMMANDS)


def test_every_option_has_a_value_pool(world):
    for name in COMMANDS:
        for param in GROUP.commands[name].params:
            if not getattr(param, "is_flag", False) and param.name != "help":
                assert _pool(param, world)[0], (name, param.name)


FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.filter_too_much])


@pytest.mark.slow  # ~21 s on 2 shared cores (25 runs of each command)
@pytest.mark.parametrize("name", COMMANDS)
@FUZZ
@given(data=st.data())
def test_fuzz_command(name, data, world, stubbed):
    args = data.draw(command_lines(name, world), label="args")
    result = invoke(args)
    event(f"exit {result.exit_code}" + (" (stub reached)" if "stub reached" in result.output else ""))
    assert_clean(result, args)


# --------------------------------------------------------------------------- regressions found by the fuzz

@pytest.mark.parametrize("command", [["build"], ["quantize", "--precision", "fp16"]])
def test_folder_as_the_model_is_bad_input(world, stubbed, command):
    """Found by the fuzz: ``build ""`` and ``quantize "" --precision fp16`` (and any folder) died deriving the
    output's name from the model's (``Path('.').with_suffix``: ValueError, exit 70)."""
    for model in ("", world["real"]["dir"]):
        result = invoke([*command, "--", model])
        assert result.exit_code == 3 and result.stderr.splitlines()[-1].startswith("error:"), result.output
        assert "is a folder" in result.stderr


@pytest.mark.parametrize("json_path", ["", ".", "dir"])
def test_json_path_that_is_a_folder(world, stubbed, json_path):
    """Found by the fuzz: ``info --json ''`` wrote to '.' (OSError 'Device or resource busy'), ``--json DIR``
    renamed a temporary file onto a folder (IsADirectoryError): both were internal errors, exit 70."""
    result = invoke(["info", world["real"]["onnx"], "--json", world["real"].get(json_path, json_path)])
    assert result.exit_code == 3, result.output


def _assert_usage_error(result, option):
    assert result.exit_code == 2, result.output
    assert f"Invalid value for '{option}'" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args, option", [
    # ONNX Runtime: TypeError on 10**20 threads (exit 70); 100000 spawned threads for minutes (a hang).
    (["predict", "{onnx}", "{image}", "--threads", HUGE_INT], "--threads"),
    (["predict", "{onnx}", "{image}", "--threads", "100000"], "--threads"),
    (["predict", "{onnx}", "{image}", "--threads", "-1"], "--threads"),  # was accepted and ignored
    (["bench", "--artifact", "{onnx}", "--threads", "0"], "--threads"),
    # train: torch.set_num_threads(-1) RuntimeError, numpy seed -1 ValueError, torch seed 10**20 overflow,
    # DataLoader num_workers -1 ValueError: each exit 70; --max-steps 0 silently meant "no cap".
    (["train", "--data", "{data}", "--arch", "unet_tiny", "--threads", "-1"], "--threads"),
    (["train", "--data", "{data}", "--arch", "unet_tiny", "--seed", "-1"], "--seed"),
    (["train", "--data", "{data}", "--arch", "unet_tiny", "--seed", HUGE_INT], "--seed"),
    (["train", "--data", "{data}", "--arch", "unet_tiny", "--workers", "-1"], "--workers"),
    (["train", "--data", "{data}", "--arch", "unet_tiny", "--max-steps", "0"], "--max-steps"),
    # calibration-set / quantize: numpy's default_rng(-1) ValueError, exit 70.
    (["calibration-set", "--data", "{data}", "--split", "train", "-o", "c.json", "--seed", "-1"], "--seed"),
    (["quantize", "{onnx}", "--precision", "int8", "--calib", "{data}", "--seed", "-1"], "--seed"),
], ids=lambda value: value if isinstance(value, str) else " ".join(value[:1] + value[-2:]))
def test_option_ranges_found_by_the_fuzz(world, stubbed, args, option):
    """Found by the fuzz: values the option declarations now refuse as usage errors (exit 2)."""
    _assert_usage_error(invoke([arg.format(**world["real"]) for arg in args]), option)


# Found by the fuzz: check_range let NaN through (nan < low is False), so the configs accepted it (exit 0).
@pytest.mark.parametrize("args", [
    ["train", "--data", "{data}", "--arch", "unet_tiny", "--lr", "nan"],
    ["train", "--data", "{data}", "--arch", "unet_tiny", "--kd-temperature", "nan"],
    ["quantize", "{onnx}", "--precision", "fp16", "--min-agreement", "nan"],
    ["quantize", "{onnx}", "--precision", "int8", "--calib", "{data}", "--percentile", "nan"],
    ["export", "unet_tiny", "--atol", "nan"],
], ids=lambda args: " ".join(args[-2:]))
def test_nan_is_bad_input(world, stubbed, args):
    result = invoke([arg.format(**world["real"]) for arg in args])
    assert result.exit_code == 3, result.output


# Found by the fuzz: torch raised RuntimeError inside train_model (exit 70).
def test_train_unknown_device_is_bad_input(world, stubbed):
    result = invoke(["train", "--data", world["real"]["data"], "--arch", "unet_tiny", "--device", "abc"])
    assert result.exit_code == 3, result.output


# Found by the fuzz: 99999 exported an opset-18 graph and reported 'opset 99999'.
def test_export_opset_beyond_the_exporter_is_bad_input(world, stubbed):
    result = invoke(["export", "unet_tiny", "--opset", "99999"])
    assert result.exit_code == 3, result.output
