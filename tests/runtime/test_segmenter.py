"""Segmenter: pre/post cases, batches, logits, overlay, tiling, torch-free use, concurrency."""

import json
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.backends.base import Backend, InputSpec
from segdeploy.errors import BadInputError, MissingDependencyError, UsageError
from segdeploy.runtime import segmenter as segmenter_module
from segdeploy.runtime.segmenter import Segmenter, SegmenterPool
from segdeploy.runtime.tiling import tile_starts


@pytest.mark.parametrize("shape", [(64, 80), (64, 80, 1), (64, 80, 4), (33, 47, 3), (1, 1, 3)])
def test_gray_bgra_and_odd_sizes_give_masks_at_the_original_size(artifacts, shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    segmenter = Segmenter(artifacts["onnxruntime"])
    mask = segmenter.predict(image)
    assert mask.shape == shape[:2] and mask.dtype == np.uint8 and mask.max() < segmenter.meta.num_classes


def test_non_uint8_images_are_refused(artifacts):
    with pytest.raises(BadInputError, match="convert to 8-bit"):
        Segmenter(artifacts["onnxruntime"]).predict(np.zeros((8, 8, 3), np.float32))


def test_predict_batch_of_mixed_sizes_matches_predict(artifacts, scene_images):
    images = [scene_images[0], scene_images[1][:50, :70], scene_images[2]]
    segmenter = Segmenter(artifacts["onnxruntime"])
    for batched, image in zip(segmenter.predict_batch(images), images):
        np.testing.assert_array_equal(batched, segmenter.predict(image))


def test_logits_and_overlay(artifacts, scene_images):
    segmenter = Segmenter(artifacts["openvino"], precision="f32")
    image = scene_images[0][:50, :70]
    logits = segmenter.logits(image)
    assert logits.shape == (segmenter.meta.num_classes, 50, 70) and logits.dtype == np.float32
    mask = segmenter.predict(image)
    np.testing.assert_array_equal(logits.argmax(0), mask)
    blended = segmenter.overlay(image, mask, alpha=1.0)
    palette_bgr = np.asarray(segmenter.meta.palette, np.uint8)[:, ::-1]
    np.testing.assert_array_equal(blended, palette_bgr[mask])


def test_tile_starts_cover_the_length():
    assert tile_starts(100, 100, 0.5) == [0]
    starts = tile_starts(250, 100, 0.25)
    assert starts[0] == 0 and starts[-1] == 150 and all(b - a <= 75 for a, b in zip(starts, starts[1:]))


def test_tiling_matches_whole_image_inference(artifacts):
    from segdeploy.data.synthetic import make_scenes

    big = make_scenes(1, 192, 256, seed=9)[0][0]
    whole = Segmenter(artifacts["onnxruntime"]).predict(big)
    one_tile = Segmenter(artifacts["onnxruntime"], tile=(192, 256)).predict(big)
    np.testing.assert_array_equal(one_tile, whole)  # a tile covering the image is the whole image
    tiled = Segmenter(artifacts["onnxruntime"], tile="128x128", overlap=0.5).predict(big)
    assert tiled.shape == whole.shape and np.bincount(whole.ravel()).max() < 0.9 * whole.size  # not one class
    # Tiles see less context near their edges; overlapped blending keeps most pixels identical.
    assert np.mean(tiled == whole) >= 0.9


def test_deployment_needs_no_torch(artifacts):
    script = """
import sys, json
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from segdeploy import Segmenter
image = np.full((40, 60, 3), 90, np.uint8)
shapes = [Segmenter(path).predict(image).shape for path in sys.argv[1:]]
print(json.dumps({"shapes": shapes, "torch_loaded": "torch" in sys.modules and sys.modules["torch"] is not None}))
"""
    result = subprocess.run([sys.executable, "-c", script, str(artifacts["onnxruntime"]), str(artifacts["openvino"])],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"shapes": [[40, 60], [40, 60]], "torch_loaded": False}


@pytest.mark.parametrize("kind", ["onnxruntime", "openvino"])
def test_threads_sharing_one_segmenter_get_right_results(artifacts, scene_images, kind):
    segmenter = Segmenter(artifacts[kind], precision="f32") if kind == "openvino" else Segmenter(artifacts[kind])
    expected = [segmenter.predict(image) for image in scene_images]
    failures = []

    def work(seed: int) -> None:
        for step in range(12):
            index = (seed + step) % len(scene_images)
            if not np.array_equal(segmenter.predict(scene_images[index]), expected[index]):
                failures.append((seed, step))

    _run_threads(work, 4)
    assert failures == []


def test_pool_gives_right_results_to_threads(artifacts, scene_images):
    with SegmenterPool(artifacts["openvino"], size=2, precision="f32") as pool:
        expected = [pool.predict(image) for image in scene_images]
        results = {}

        def work(index: int) -> None:
            results[index] = pool.predict(scene_images[index % 3])

        _run_threads(work, 6)
    assert all(np.array_equal(results[i], expected[i % 3]) for i in range(6))


class _SleepingBackend(Backend):
    """Stand-in backend whose call sleeps (GIL released) and records when it ran, to measure overlap."""

    name = "sleeping"

    def __init__(self, calls: list, classes: int) -> None:
        super().__init__()
        self.calls, self.classes = calls, classes

    def _activate(self) -> InputSpec:
        return InputSpec("input", np.dtype(np.float32), None)

    def _close(self) -> None:
        pass

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        started = time.perf_counter()
        time.sleep(0.1)
        self.calls.append((id(self), started, time.perf_counter()))  # list.append is atomic
        return np.zeros((batch.shape[0], self.classes, *batch.shape[2:]), np.float32)  # logits: class 0 everywhere


@pytest.fixture
def sleeping_calls(monkeypatch, artifacts) -> list:
    """Every Segmenter made in the test gets its own sleeping backend; returns their shared call log."""
    calls: list = []
    classes = read_artifact_meta(artifacts["onnxruntime"]).num_classes  # the output the metadata promises
    monkeypatch.setattr(segmenter_module, "make_backend", lambda *args, **kwargs: _SleepingBackend(calls, classes))
    return calls


def _run_threads(work, count: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _most_at_once(calls: list) -> int:
    """The largest number of recorded calls running at the same moment."""
    events = sorted([(start, 1) for _, start, _ in calls] + [(end, -1) for _, _, end in calls])
    running = most = 0
    for _, step in events:  # at equal times an end (-1) sorts first: touching calls do not overlap
        running += step
        most = max(most, running)
    return most


def test_pool_serves_threads_in_parallel(artifacts, sleeping_calls):
    image = np.zeros((64, 80, 3), np.uint8)
    with SegmenterPool(artifacts["onnxruntime"], size=2) as pool:
        _run_threads(lambda _: [pool.predict(image) for _ in range(2)], 4)
    assert len(sleeping_calls) == 8
    assert _most_at_once(sleeping_calls) == 2  # both members at once, never more: one global lock would give 1
    members = {backend for backend, _, _ in sleeping_calls}
    assert len(members) == 2
    for member in members:  # each member serves one thread at a time
        assert _most_at_once([call for call in sleeping_calls if call[0] == member]) == 1


def test_one_segmenter_runs_one_call_at_a_time(artifacts, sleeping_calls):
    segmenter = Segmenter(artifacts["onnxruntime"])
    _run_threads(lambda _: segmenter.predict(np.zeros((64, 80, 3), np.uint8)), 3)
    assert len(sleeping_calls) == 3 and _most_at_once(sleeping_calls) == 1


def test_several_processes_at_once(artifacts, tmp_path):
    image = tmp_path / "x.png"
    cv2.imwrite(str(image), np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    commands = [[sys.executable, "-m", "segdeploy", "--quiet", "predict", str(artifacts["onnxruntime"]), str(image),
                 "-o", str(tmp_path / f"out{i}"), "--mask-format", "ids"] for i in range(3)]
    processes = [subprocess.Popen(command, stderr=subprocess.PIPE) for command in commands]
    assert [process.wait(timeout=120) for process in processes] == [0, 0, 0]
    masks = [cv2.imread(str(tmp_path / f"out{i}" / "x.png"), cv2.IMREAD_UNCHANGED) for i in range(3)]
    assert all(np.array_equal(mask, masks[0]) for mask in masks)


def test_errors(artifacts, tmp_path):
    with pytest.raises(BadInputError, match="unknown artifact type"):
        Segmenter(tmp_path / "model.tflite")
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    with pytest.raises(BadInputError, match="is not an ONNX model: it is a text file"):
        Segmenter(tmp_path / "bad.onnx")
    with pytest.raises(UsageError, match="unknown Segmenter option"):
        Segmenter(artifacts["onnxruntime"], colour="blue")
    with pytest.raises(BadInputError, match="overlap"):
        Segmenter(artifacts["onnxruntime"], overlap=1.0)


def test_engine_without_tensorrt_is_a_missing_dependency(artifacts, tmp_path):
    from segdeploy.artifact_meta import read_artifact_meta
    from segdeploy.engine_manifest import EngineManifest, Environment, write_manifest

    if __import__("importlib").util.find_spec("tensorrt"):
        pytest.skip("TensorRT is installed")
    (tmp_path / "m.engine").write_bytes(b"engine")
    built_on = Environment("11.4.0", "13.0", "NVIDIA H100", (9, 0), "linux", "x86_64")
    write_manifest(EngineManifest(read_artifact_meta(artifacts["onnxruntime"]).to_dict(), built_on, [], "fp32",
                                  "", "", 0.0, False, "none"), tmp_path / "m.engine")
    with pytest.raises(MissingDependencyError, match="tensorrt"):
        Segmenter(tmp_path / "m.engine")


def test_an_output_that_breaks_the_metadata_is_bad_input(artifacts, tmp_path):
    # Found by fuzzing: a flipped .bin compiled and returned an empty output, an IndexError in postprocess.
    import onnx

    from segdeploy.artifact_meta import attach_metadata

    model = onnx.load(artifacts["onnxruntime"])
    meta = read_artifact_meta(artifacts["onnxruntime"])
    wrong = meta.replace(num_classes=meta.num_classes + 1, class_names=(*meta.class_names, "extra"),
                         palette=(*meta.palette, (1, 2, 3)))
    onnx.save(attach_metadata(model, wrong), tmp_path / "m.onnx")
    with Segmenter(tmp_path / "m.onnx") as segmenter, pytest.raises(BadInputError, match="as its metadata promises"):
        segmenter.predict(np.zeros((64, 80, 3), np.uint8))
