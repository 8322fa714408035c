import numpy as np
import pytest

from segdeploy.bench.agreement import AccuracyTracker
from segdeploy.bench.results import ClassFlip
from segdeploy.bench.spec import ArtifactSpec, parse_spec
from segdeploy.bench.stats import Budget, latency_stats, parse_budget
from segdeploy.errors import BadInputError, UsageError


def test_latency_stats_on_known_samples():
    stats = latency_stats(list(range(1, 101)))  # 1..100 ms
    assert (stats.count, stats.min, stats.max, stats.mean) == (100, 1, 100, 50.5)
    assert stats.p50 == pytest.approx(50.5) and stats.p90 == pytest.approx(90.1) and stats.p99 == pytest.approx(99.01)
    assert stats.std == pytest.approx(np.std(np.arange(1, 101))) and stats.cv == pytest.approx(stats.std / 50.5)
    assert latency_stats([10.0] * 5).cv == 0 and not latency_stats([10.0] * 5).noisy


@pytest.mark.parametrize("text, budget", [("20", Budget(iterations=20)), ("2s", Budget(seconds=2.0)),
                                          ("0.5s", Budget(seconds=0.5)), (7, Budget(iterations=7))])
def test_budgets(text, budget):
    assert parse_budget(text, "--warmup") == budget


@pytest.mark.parametrize("text", ["0", "-3", "2m", "1.5", "", "0s"])
def test_bad_budgets_are_usage_errors(text):
    with pytest.raises(UsageError):
        parse_budget(text, "--iters")


@pytest.mark.parametrize("text, spec", [
    ("unet.onnx", ArtifactSpec(__import__("pathlib").Path("unet.onnx"), "onnxruntime")),
    ("unet.onnx@openvino", ArtifactSpec(__import__("pathlib").Path("unet.onnx"), "openvino")),
    ("unet.onnx@openvino:f32", ArtifactSpec(__import__("pathlib").Path("unet.onnx"), "openvino", "f32")),
    ("m.pt", ArtifactSpec(__import__("pathlib").Path("m.pt"), "torch")),
    ("dir/m.engine", ArtifactSpec(__import__("pathlib").Path("dir/m.engine"), "tensorrt")),
])
def test_spec_parsing(text, spec):
    parsed = parse_spec(text)
    assert parsed == spec and parsed.label.startswith(spec.path.name + "@" + spec.backend)


def test_spec_options():
    assert parse_spec("m.onnx@openvino:bf16").segmenter_options() == {"precision": "bf16"}
    assert parse_spec("m.pt@torch:fp16").segmenter_options() == {"autocast": "fp16"}
    assert parse_spec("m.pt@torch:bf16").segmenter_options() == {"autocast": "bf16"}
    with pytest.raises(UsageError, match="does not apply"):
        parse_spec("m.onnx@onnxruntime:f32")
    with pytest.raises(UsageError, match="unknown backend"):
        parse_spec("m.onnx@tflite")
    with pytest.raises(BadInputError, match="unknown artifact type"):
        parse_spec("m.tflite")


def test_agreement_tracker_flips_and_worst_images():
    tracker, reference = AccuracyTracker(3, 255), AccuracyTracker(3, 255)
    labels = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    truth_like = labels.copy()
    truth_like[labels == 255] = 0
    flipped = truth_like.copy()
    flipped[0, 2] = 0  # the artifact calls one class-1 pixel class 0
    reference.update("a.png", truth_like, None, labels)
    tracker.update("a.png", flipped, truth_like, labels)
    tracker.update("b.png", truth_like, truth_like, labels)
    summary = tracker.summary(("x", "y", "z"), reference)
    assert summary.agreement_vs_reference == pytest.approx(11 / 12)  # ignore pixels excluded
    assert summary.top_flips == (ClassFlip(reference="y", artifact="x", pixels=1, fraction_of_reference_class=0.25),)
    assert [worst.image for worst in summary.worst_images] == ["a.png", "b.png"]
    assert summary.delta_miou < 0 and summary.per_class_iou_change["z"] == 0
    serialised = summary.to_dict()  # the JSON keeps its documented keys
    assert serialised["top_flips"][0]["fraction_of_reference_class"] == 0.25 and serialised["miou"] is not None
