"""``predict --ray`` (Ray Data): resumable after SIGKILL into the plain path's bytes, one-line refusals.

Runs join the session's shared Ray instance (``ray_cluster``): in-process calls use this process's Ray, the
killed CLI joins it by address.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.runtime.predict import PredictConfig, predict_files
from segdeploy.serve.batch import RayPredictConfig, predict_files_ray
from segdeploy.serve.runfile import RUN_FILE, outputs_done

runner = CliRunner()
IMAGES = 200


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _failure(result, code, fragment):
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith("error:") and fragment in lines[-1] and "Traceback" not in result.output, lines


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """200 images of 64x80 and ``list.txt`` naming them (relative to its folder)."""
    folder = tmp_path_factory.mktemp("frames")
    for index, image in enumerate(make_scenes(IMAGES, 64, 80, seed=11)[0]):
        cv2.imwrite(str(folder / f"s{index:03d}.png"), image)
    (folder / "list.txt").write_text("".join(f"s{index:03d}.png\n" for index in range(IMAGES)))
    return folder


@pytest.fixture(scope="module")
def plain(artifacts, frames, tmp_path_factory):
    """The single-process ``predict --overlay`` outputs for ``frames``."""
    from segdeploy.runtime.segmenter import Segmenter

    out = tmp_path_factory.mktemp("plain")
    with Segmenter(artifacts["onnxruntime"]) as segmenter:
        predict_files(segmenter, [frames / "list.txt"], out, PredictConfig(overlay=True))
    return out


def _assert_same_files(expected, actual):
    names = sorted(path.name for path in expected.iterdir())
    assert sorted(path.name for path in actual.iterdir() if path.name != RUN_FILE) == names  # no temporaries
    assert len(names) == 2 * IMAGES
    different = [name for name in names if (expected / name).read_bytes() != (actual / name).read_bytes()]
    assert not different


@pytest.mark.slow
def test_a_killed_run_resumes_into_the_plain_paths_bytes(artifacts, frames, plain, ray_cluster, tmp_path,
                                                         monkeypatch):
    """The CLI killed (SIGKILL) half way, resumed by the library with 2 actors: every output written by Ray,
    each byte-identical to single-process ``predict``'s. Then the run file refuses other options unless
    ``--overwrite`` (here on three of the images). Relative paths throughout: Ray's workers run in another
    folder than the driver."""
    monkeypatch.chdir(tmp_path)
    model, out, inputs = artifacts["onnxruntime"], Path("out"), Path(os.path.relpath(frames, tmp_path))
    command = [sys.executable, "-m", "segdeploy", "--quiet", "predict", model, inputs / "list.txt", "-o", out,
               "--overlay", "--ray", "--address", ray_cluster.address, "--batch", "2"]
    with open("stderr", "wb") as stderr:
        process = subprocess.Popen([str(part) for part in command], stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.monotonic() + 60
    while process.poll() is None and len(list(out.glob("*_overlay.jpg"))) < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _wait_until_no_writer_runs()  # Ray ends the killed driver's actors soon, not at once
    done = len(list(out.glob("*_overlay.jpg")))
    assert 0 < done < IMAGES, (done, Path("stderr").read_text()[-2000:])

    progress = []
    report = predict_files_ray(model, [inputs], out, RayPredictConfig(overlay=True, concurrency=2, batch=16),
                               lambda finished, total: progress.append((finished, total)))
    assert report.images == IMAGES and report.skipped >= done and report.written == 2 * (IMAGES - report.skipped)
    assert progress[0] == (0, IMAGES - report.skipped) and progress[-1] == (IMAGES - report.skipped,) * 2
    _assert_same_files(plain, out)

    other = invoke("predict", model, inputs, "-o", out, "--ray", "--overlay", "--mask-format", "ids")
    _failure(other, 3, "with other options: mask_format \"palette\" (now \"ids\")")
    assert "--overwrite" in other.stderr
    Path("three.txt").write_text("".join(f"{inputs / name}\n" for name in ("s000.png", "s007.png", "s199.png")))
    replaced = invoke("predict", model, "three.txt", "-o", out, "--ray", "--mask-format", "ids", "--overwrite",
                      "--json", "r.json")
    assert replaced.exit_code == 0, replaced.output
    assert json.loads(Path("r.json").read_text())["skipped"] == 0
    assert json.loads((out / RUN_FILE).read_text())["options"]["mask_format"] == "ids"
    ids = cv2.imread(str(out / "s007.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(ids, _palette_indices(plain / "s007.png"))
    assert not (out / "s007_overlay.jpg").exists()  # its stale overlay went with the old mask
    # The other images' outputs stay, older than the new run file: a rerun takes none of them as done.
    assert outputs_done(out, [(f"s{i:03d}.png",) for i in range(IMAGES)]) == [i in (0, 7, 199) for i in range(IMAGES)]


def _wait_until_no_writer_runs(timeout=30.0):
    """Until no Ray worker of this machine runs a batch writer actor (their processes name their class)."""
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        writers = []
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                writers += [process for part in process.info["cmdline"] or () if "_SegmentWriter" in part]
        if not writers:
            return
        time.sleep(0.1)
    raise AssertionError("the killed run's actors still run")


def _palette_indices(path):
    from PIL import Image

    with Image.open(path) as image:
        assert image.mode == "P"
        return np.asarray(image)


@pytest.mark.slow
def test_an_image_that_fails_inside_ray_is_one_line(artifacts, ray_cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), make_scenes(1, 64, 80, seed=2)[0][0])
    (folder / "b.png").write_bytes(b"not an image")
    result = invoke("predict", artifacts["onnxruntime"], folder, "-o", tmp_path / "out", "--ray", "--batch", "1")
    _failure(result, 3, "b.png is not a PNG")
    assert {path.name for path in (tmp_path / "out").iterdir()} <= {RUN_FILE, "a.png"}  # no temporaries


def test_refusals_before_ray_starts(tmp_path):
    """Videos, one stem twice, a foreign or damaged run file, outputs without one, options without --ray."""
    model = tmp_path / "m.onnx"
    model.write_bytes(b"model bytes: only hashed before Ray starts")
    images = tmp_path / "images"
    images.mkdir()
    cv2.imwrite(str(images / "x.png"), make_scenes(1, 16, 20, seed=1)[0][0])
    (tmp_path / "clip.mp4").write_bytes(b"video")
    (tmp_path / "x.jpg").write_bytes(b"jpeg")
    out = tmp_path / "out"

    def ray(*args):
        return invoke("predict", model, *args, "-o", out, "--ray")

    _failure(ray(images, tmp_path / "clip.mp4"), 3, "clip.mp4 is a video: --ray takes images only; run videos without")
    _failure(ray(images, tmp_path / "x.jpg"), 3, "share the stem 'x'")
    out.mkdir()
    (out / "x.png").write_bytes(b"made by someone")
    _failure(ray(images), 3, f"no {RUN_FILE}")
    (out / RUN_FILE).write_text("{not json")
    _failure(ray(images), 3, "is not a segdeploy run file: invalid JSON")
    record = {"format": 1, "artifact": {"name": "m.onnx", "sha256": "0" * 64}, "options": {}}
    (out / RUN_FILE).write_text(json.dumps(record))
    _failure(ray(images), 3, "was made by another model (m.onnx, sha256 000000000000; now m.onnx")
    (tmp_path / "nested.txt").write_text("list.txt\n")
    _failure(ray(tmp_path / "nested.txt"), 3, "lists do not nest")
    for option in (["--concurrency", "2"], ["--batch", "4"], ["--address", "auto"], ["--overwrite"]):
        _failure(invoke("predict", model, images, *option), 2, f"{option[0]} works with --ray only")
    _failure(invoke("predict", model, images, "--ray", "--frame-masks"), 2, "--frame-masks is for videos")
    assert (out / "x.png").read_bytes() == b"made by someone"
    with pytest.raises(BadInputError, match="--batch must be"):
        RayPredictConfig(batch=0)
