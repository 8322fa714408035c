"""The bench's recommendation is read off the figures: the latency/accuracy frontier."""

from pathlib import Path

from segdeploy.bench.recommend import frontier, recommendation
from segdeploy.bench.results import AccuracySummary, BenchReport, BenchResult
from segdeploy.bench.spec import ArtifactSpec
from segdeploy.bench.stats import latency_stats


def _result(name: str, p50: float, miou: float) -> BenchResult:
    return BenchResult(ArtifactSpec(Path(name), "onnxruntime"), "fp32", (8, 8), 1, 1.0,
                       latency_ms={"infer": latency_stats([p50])}, accuracy=AccuracySummary(miou=miou))


def _report(*results: BenchResult) -> BenchReport:
    return BenchReport(None, {}, results, None, ())


def test_the_frontier_keeps_only_choices_that_buy_accuracy():
    report = _report(_result("slow_best.onnx", 40.0, 0.62), _result("fast.onnx", 20.0, 0.60),
                     _result("slower_worse.onnx", 30.0, 0.59), _result("fast_tie.onnx", 20.5, 0.601))
    assert [choice.result.spec.path.name for choice in frontier(report)] == ["fast_tie.onnx", "slow_best.onnx"]


def test_the_recommendation_is_the_fastest_within_noise_of_the_best():
    close = _report(_result("a.onnx", 40.0, 0.600), _result("b.onnx", 20.0, 0.598))
    assert recommendation(close).startswith("Recommended on this machine: b.onnx@onnxruntime (fp32), 20.0 ms p50")
    apart = _report(_result("a.onnx", 40.0, 0.620), _result("b.onnx", 20.0, 0.600))
    assert recommendation(apart).startswith("Recommended on this machine: a.onnx@onnxruntime")
    assert recommendation(_report()) is None  # nothing measured, nothing recommended
