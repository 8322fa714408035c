"""The CLI in-process with typer's CliRunner: success paths, conventions and clean errors."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.models import create_model
from tests.bad_files import BAD_CHECKPOINT_KINDS, BAD_CHECKPOINTS, SIDE_EFFECT_FILE, write_bad_checkpoint

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_clean_failure(result, code, fragment):
    """Exit code as the conventions table says, one line on stderr, no traceback."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("error:"), result.stderr
    assert fragment in lines[-1], lines[-1]
    assert "Traceback" not in result.output


@pytest.mark.parametrize("kind", BAD_CHECKPOINT_KINDS)
def test_export_refuses_files_that_are_not_checkpoints(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    result = invoke("export", write_bad_checkpoint(tmp_path / "bad.pt", kind), "-o", tmp_path / "out.onnx")
    assert_clean_failure(result, 3, BAD_CHECKPOINTS[kind])
    assert not (tmp_path / SIDE_EFFECT_FILE).exists() and not (tmp_path / "out.onnx").exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["missing.pt"], "not found"),
        (["resnet50"], "unknown architecture"),
        (["unet_tiny", "--input-size", "360"], "not HxW"),
        (["unet_tiny", "--input-size", "0x10"], "positive"),
        (["unet_tiny", "--num-classes", "0"], "num-classes must be >= 1"),
        (["unet_tiny", "-o", "no/such/folder/x.onnx"], "does not exist"),
    ],
)
def test_export_bad_input_exits_3(tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    assert_clean_failure(invoke("export", *args), 3, fragment)
    assert not list(tmp_path.glob("*.onnx"))


def test_state_dict_that_does_not_fit_names_the_keys(tmp_path):
    torch.save(create_model("unet_tiny", num_classes=3).state_dict(), tmp_path / "w.pt")
    result = invoke("export", tmp_path / "w.pt", "--arch", "swin_seg_tiny", "--num-classes", "3",
                    "-o", tmp_path / "w.onnx")
    assert_clean_failure(result, 3, "does not fit swin_seg_tiny: missing")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
def test_unwritable_output_path():
    # /proc refuses new files even to root, which CI runs as.
    result = invoke("export", "unet_tiny", "--num-classes", "2", "-o", "/proc/segdeploy-test.onnx")
    assert_clean_failure(result, 3, "cannot write")


def test_usage_errors_are_typers_own_exit_2():
    assert invoke("export", "unet_tiny", "--input-layout", "CHWN").exit_code == 2
    assert invoke("export", "unet_tiny", "--opset", "twenty").exit_code == 2
    assert invoke("frobnicate").exit_code == 2


def test_failed_verification_exits_1_and_writes_nothing(tmp_path):
    result = invoke("export", "unet_tiny", "--num-classes", "3", "--atol", "0", "--rtol", "0",
                    "-o", tmp_path / "x.onnx")
    assert_clean_failure(result, 1, "does not match eager PyTorch")
    assert "FAIL" in result.stdout and not (tmp_path / "x.onnx").exists()


def test_debug_shows_the_traceback():
    result = runner.invoke(app, ["--debug", "export", "missing.pt"])
    assert result.exit_code == 3 and "Traceback" in result.stderr and "BadInputError" in result.stderr
    assert "Traceback" not in invoke("export", "missing.pt").stderr  # only with --debug


def test_export_writes_verified_onnx_and_json(tmp_path):
    result = invoke("export", "unet_tiny", "--num-classes", "3", "--input-size", "64x80",
                    "-o", tmp_path / "u.onnx", "--json", tmp_path / "u.json")
    assert result.exit_code == 0, result.output
    assert "pass" in result.stdout and (tmp_path / "u.onnx").is_file()
    summary = json.loads((tmp_path / "u.json").read_text())
    assert summary["verification"]["passed"] and summary["input_size"] == [64, 80]
    assert summary["output"] == str(tmp_path / "u.onnx")


def test_export_with_recipe_and_override(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('source = "unet_tiny"\nnum_classes = 2\ninput_size = "48x64"\ndynamic = false\n')
    result = invoke("export", "--recipe", recipe, "--input-size", "32x48", "-o", tmp_path / "r.onnx",
                    "--json", "-")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["input_size"] == [32, 48] and summary["dynamic"] is False


def test_recipe_with_unknown_key_is_rejected(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('source = "unet_tiny"\nopsett = 20\n')
    assert_clean_failure(invoke("export", "--recipe", recipe), 3, "unknown recipe key")


def test_info_on_onnx_and_presets(unet_export, tmp_path):
    _, _, report = unet_export
    result = invoke("info", report.output, "--json", tmp_path / "i.json")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "i.json").read_text())
    assert data["inputs"][0]["name"] == "input" and data["outputs"][0]["name"] == "logits"
    assert data["opset"] == 20 and data["meta"]["arch"] == "unet_tiny"
    presets = invoke("info", "--json", "-")
    names = [row["name"] for row in json.loads(presets.stdout[presets.stdout.index("["):])]
    assert {"unet", "swin_seg_t"} <= set(names)


def _environment() -> dict:
    result = invoke("info", "--env", "--json", "-")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout[result.stdout.index("{"):])


def test_info_env_reports_backends():
    assert _environment()["backends"]["onnxruntime"]["usable"] is True  # a core dependency of the test environment


@pytest.mark.parametrize("stand_in, usable", [(None, False), (SimpleNamespace(__version__="10.9.0"), True)])
def test_info_env_says_whether_tensorrt_imports(monkeypatch, stand_in, usable):
    # A stand-in in sys.modules decides what "import tensorrt" gives, whatever this machine has installed.
    monkeypatch.setitem(sys.modules, "tensorrt", stand_in)
    tensorrt = _environment()["backends"]["tensorrt"]
    assert tensorrt["usable"] is usable and tensorrt["extra"] == "tensorrt"
    assert tensorrt.get("version") == ("10.9.0" if usable else None)
    assert ("Error: " in tensorrt["detail"]) is not usable  # the import error says why it is unusable


def test_info_on_a_random_file_is_bad_input(tmp_path):
    path = tmp_path / "x.onnx"
    path.write_bytes(b"\x00garbage" * 20)
    assert_clean_failure(invoke("info", path), 3, "is not an ONNX model: it is unrecognised binary data")


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.stdout.startswith("segdeploy ")


HEAVY = ("torch", "onnxruntime", "openvino", "nncf", "tensorrt", "ray", "pyarrow", "pandas")


def test_import_and_help_stay_light():
    code = (
        "import sys, segdeploy\n"
        "from typer.testing import CliRunner\n"
        "from segdeploy.cli.app import app\n"
        "for args in (['--help'], ['export', '--help'], ['info', '--help'], ['serve', '--help'],\n"
        "             ['predict', '--help']):\n"
        "    assert CliRunner().invoke(app, args).exit_code == 0\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_console_script_runs_in_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "segdeploy", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and "segdeploy" in result.stdout


def test_export_openvino_writes_onnx_and_ir_and_converts_onnx(tmp_path):
    result = invoke("--quiet", "export", "unet_tiny", "--num-classes", "3", "--input-size", "64x80", "--format",
                    "openvino", "-o", tmp_path / "m.xml")
    assert result.exit_code == 0, result.output
    assert {p.name for p in tmp_path.iterdir()} == {"m.onnx", "m.xml", "m.bin"}
    again = invoke("--quiet", "export", tmp_path / "m.onnx", "--format", "openvino", "-o", tmp_path / "n.xml")
    assert again.exit_code == 0 and "FP32 weights" in again.stdout
    refused = invoke("export", tmp_path / "m.onnx")
    assert refused.exit_code == 2 and "--format openvino" in refused.stderr


@pytest.mark.slow  # a fresh interpreter per case, ~8 s each on 2 cores
@pytest.mark.parametrize("args", [["info"], ["quantize", "--help"]])
def test_a_closed_pipe_is_not_an_error(args):
    # The reader closes its end before segdeploy has written anything (it takes ~1 s to start),
    # as "segdeploy info | head -0" does: stopping early is what the reader asked for, not a failure.
    process = subprocess.Popen([sys.executable, "-m", "segdeploy", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    process.stdout.close()
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0, stderr
    assert "internal error" not in stderr and "Traceback" not in stderr


def test_a_bug_is_exit_70_in_one_line(monkeypatch):
    # A failure segdeploy did not anticipate is its own bug: exit 70 (sysexits' EX_SOFTWARE), never 1,
    # which means "a check ran and failed"; one line, the traceback only with --debug.
    import segdeploy.info

    def broken(*args, **kwargs):
        return [][0]

    monkeypatch.setattr(segdeploy.info, "describe_environment", broken)
    result = invoke("info", "--env")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 70, result.output
    assert len(lines) == 1 and lines[0].startswith("internal error (a bug in segdeploy): IndexError")
    assert "Traceback" not in result.output
    debug = invoke("--debug", "info", "--env")
    assert debug.exit_code == 70 and "Traceback" in debug.stderr
