"""What a bench table recommends: the latency/accuracy frontier of the rows measured, read off the
figures rather than written by hand."""

from __future__ import annotations

from dataclasses import dataclass

from segdeploy.bench.results import BenchReport, BenchResult

MIN_GAIN = 0.005  # smaller mIoU (or agreement mIoU) differences are within what calibration or a seed changes
SAME_LATENCY = 0.05  # p50 differences under 5 % are within a shared 2-core machine's run-to-run noise


@dataclass(frozen=True)
class Choice:
    result: BenchResult
    latency_ms: float  # infer p50
    score: float  # val mIoU with labels, else agreement mIoU with the reference


def frontier(report: BenchReport) -> list[Choice]:
    """The most accurate choice per latency budget: each choice beats every faster one by at least
    MIN_GAIN; latencies within SAME_LATENCY count as equal (the more accurate one is kept)."""
    choices = sorted((Choice(result, result.infer.p50, score) for result in report.results
                      if result.ok and result.infer is not None and (score := _score(result)) is not None),
                     key=lambda choice: (choice.latency_ms, -choice.score))
    kept: list[Choice] = []
    for choice in choices:
        if kept and choice.latency_ms <= kept[-1].latency_ms * (1 + SAME_LATENCY):
            if choice.score > kept[-1].score:  # as fast as the last one within noise, and more accurate
                kept[-1] = choice
        elif not kept or choice.score >= kept[-1].score + MIN_GAIN:
            kept.append(choice)
    return kept


def recommendation(report: BenchReport) -> str | None:
    """One line: the fastest row within MIN_GAIN of the best score, and what it costs against the best."""
    choices = frontier(report)
    if not choices:
        return None
    best = max(choices, key=lambda choice: choice.score)
    fastest = next(choice for choice in choices if choice.score >= best.score - MIN_GAIN)
    what = "val mIoU" if fastest.result.accuracy.miou is not None else "agreement mIoU"
    line = (f"Recommended on this machine: {fastest.result.spec.label} ({fastest.result.precision}), "
            f"{fastest.latency_ms:.1f} ms p50, {what} {fastest.score:.4f}")
    if fastest is not best:
        line += (f"; the most accurate, {best.result.spec.label}, scores {best.score:.4f} at "
                 f"{best.latency_ms:.1f} ms")
    return line + "."


def _score(result: BenchResult) -> float | None:
    accuracy = result.accuracy
    if accuracy is None:
        return None
    return accuracy.miou if accuracy.miou is not None else accuracy.miou_vs_reference
