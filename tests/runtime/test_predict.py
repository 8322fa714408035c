"""``segdeploy predict`` on images, folders and a generated video; its errors."""

import json

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.data.synthetic import make_scenes

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def video(tmp_path):
    frames, _ = make_scenes(6, 48, 64, seed=3)
    path = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def test_predict_images_and_video(artifacts, video, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for index, image in enumerate(make_scenes(2, 50, 70, seed=4)[0]):
        cv2.imwrite(str(images / f"im{index}.png"), image)
    out = tmp_path / "out"
    result = invoke("predict", artifacts["openvino"], images, video, "-o", out, "--overlay", "--frame-masks",
                    "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert (report["images"], report["videos"], report["frames"]) == (2, 1, 6)
    mask = Image.open(out / "im0.png")
    assert mask.mode == "P" and mask.size == (70, 50)
    assert cv2.imread(str(out / "im0_overlay.jpg")).shape == (50, 70, 3)
    capture = cv2.VideoCapture(str(out / "clip_overlay.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert sorted(p.name for p in (out / "clip").iterdir()) == [f"{i:06d}.png" for i in range(6)]
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_raw_ids_match_the_api(artifacts, tmp_path):
    image = make_scenes(1, 40, 60, seed=8)[0][0]
    cv2.imwrite(str(tmp_path / "x.png"), image)
    assert invoke("predict", artifacts["onnxruntime"], tmp_path / "x.png", "-o", tmp_path / "o",
                  "--mask-format", "ids").exit_code == 0
    from segdeploy import Segmenter

    written = cv2.imread(str(tmp_path / "o" / "x.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(written, Segmenter(artifacts["onnxruntime"]).predict(image))


def _failure(result, code, fragment):
    assert result.exit_code == code, result.output
    last = [line for line in result.stderr.splitlines() if line.strip()][-1]
    assert last.startswith("error:") and fragment in last and "Traceback" not in result.output


def test_predict_errors(artifacts, tmp_path):
    (tmp_path / "empty").mkdir()
    _failure(invoke("predict", artifacts["onnxruntime"], tmp_path / "empty", "-o", tmp_path / "o"), 3,
             "holds no images")
    (tmp_path / "broken.png").write_bytes(b"no image")
    _failure(invoke("predict", artifacts["onnxruntime"], tmp_path / "broken.png", "-o", tmp_path / "o"), 3,
             "broken.png")
    (tmp_path / "broken.mp4").write_bytes(b"no video")
    _failure(invoke("predict", artifacts["onnxruntime"], tmp_path / "broken.mp4", "-o", tmp_path / "o"), 3,
             "broken.mp4")
    _failure(invoke("predict", tmp_path / "model.tflite", tmp_path / "broken.png"), 3, "unknown artifact type")
    stripped = tmp_path / "plain.onnx"
    import onnx

    model = onnx.load(artifacts["onnxruntime"])
    del model.metadata_props[:]
    onnx.save(model, stripped)
    _failure(invoke("predict", stripped, tmp_path / "broken.png"), 3, "no segdeploy metadata")


def test_cuda_device_without_a_gpu_is_exit_4(artifacts, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((8, 8, 3), np.uint8))
    _failure(invoke("predict", artifacts["torch"], tmp_path / "x.png", "-o", tmp_path / "o", "--device", "cuda"), 4,
             "cuda")


@pytest.mark.parametrize("damage, message", [
    (lambda data: data[: len(data) // 2], "is a damaged MP4 video (truncated or corrupt); OpenCV cannot open it"),
    (lambda data: b"just text, named like a video\n" * 20, "is not a video OpenCV can open: it looks like a text file"),
], ids=["truncated-mp4", "text"])
def test_videos_opencv_cannot_open_are_one_quiet_line(artifacts, video, tmp_path, damage, message, capfd):
    from segdeploy.errors import BadInputError
    from segdeploy.runtime.predict import predict_files
    from segdeploy.runtime.segmenter import Segmenter

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(damage(video.read_bytes()))
    capfd.readouterr()
    with Segmenter(artifacts["onnxruntime"]) as segmenter, pytest.raises(BadInputError) as refused:
        predict_files(segmenter, [broken], tmp_path / "out")
    assert message in str(refused.value)
    assert capfd.readouterr().err == "" and not (tmp_path / "out").exists()  # quiet, and nothing written


def test_output_folders_and_files_get_the_modes_open_and_mkdir_give(artifacts, tmp_path):
    # Issue 17: a server running as another user must be able to read what predict wrote (mkstemp gave 0600).
    import os
    import stat

    from segdeploy.runtime.predict import predict_files
    from segdeploy.runtime.segmenter import Segmenter

    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((16, 20, 3), np.uint8))
    previous = os.umask(0o027)
    try:
        with Segmenter(artifacts["onnxruntime"]) as segmenter:
            predict_files(segmenter, [tmp_path / "x.png"], tmp_path / "out" / "run")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out" / "run").stat().st_mode) == 0o750  # 0777 & ~umask
    assert stat.S_IMODE((tmp_path / "out" / "run" / "x.png").stat().st_mode) == 0o640  # 0666 & ~umask
