"""``train`` and ``calibration-set`` through the CLI."""

import json

import pytest

from segdeploy.data.synthetic import write_synthetic_dataset
from tests.cli.test_cli import assert_clean_failure, invoke


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn"), {"train": 4, "val": 2}, size=(32, 40))


def test_train_runs_and_reports(root, tmp_path):
    result = invoke("--quiet", "train", "--data", root, "--arch", "unet_tiny", "--input-size", "32x40",
                    "--epochs", "1", "--max-steps", "1", "--threads", "1", "-o", tmp_path / "m.pt",
                    "--json", tmp_path / "t.json")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "t.json").read_text())
    assert summary["best_epoch"] == 1 and 0 <= summary["best_miou"] <= 1
    assert (tmp_path / "m.pt").is_file() and "best val mIoU" in result.stdout


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--split", "nope"], "split 'nope' not found"),
        (["--input-size", "0x4"], "positive"),
        (["--epochs", "0"], "--epochs must be >= 1"),
    ],
)
def test_train_bad_input(root, tmp_path, args, fragment):
    result = invoke("train", "--data", root, "--arch", "unet_tiny", "-o", tmp_path / "m.pt", *args)
    assert_clean_failure(result, 3, fragment)
    assert not (tmp_path / "m.pt").exists()


def test_train_on_a_folder_without_layout(tmp_path):
    assert_clean_failure(invoke("train", "--data", tmp_path, "--arch", "unet_tiny"), 3, "no recognised dataset layout")


def test_train_unknown_loss_is_usage_error(root):
    assert invoke("train", "--data", root, "--arch", "unet_tiny", "--loss", "hinge").exit_code == 2


@pytest.mark.parametrize("command", ["calibration-set", "manifest"])  # "manifest": its first, hidden name
def test_calibration_set_command(root, tmp_path, command):
    result = invoke(command, "--data", root, "--split", "train", "--num-images", "3", "--select",
                    "class-balanced", "-o", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "m.json").read_text())
    assert len(written["images"]) == 3 and written["format"] == "segdeploy.calibration-set"
    assert_clean_failure(invoke(command, "--data", tmp_path / "none", "-o", tmp_path / "x.json"), 3, "not found")
