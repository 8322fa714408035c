"""The bench's two measuring passes over rows: infer latency in blocks, then accuracy with end2end latency.

Artifacts take turns in blocks (``settle`` untimed calls, then ``block`` timed ones), so machine
drift does not favour one artifact and none is timed while another runtime's threads still spin.
A row whose call fails records the error and drops out of later rounds; the others go on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from segdeploy.bench.agreement import AccuracyTracker
from segdeploy.bench.spec import ArtifactSpec
from segdeploy.bench.stats import Budget
from segdeploy.data.preprocess import prepare
from segdeploy.runtime.segmenter import Segmenter

Progress = Callable[[str, int, int], None]
T = TypeVar("T")
Sample = tuple[str, Path, "np.ndarray | None"]  # (name, image file, labels)


@dataclass
class Row:
    """One artifact at one input size while it is being measured."""

    spec: ArtifactSpec
    input_size: tuple[int, int]
    segmenter: Segmenter | None = None
    error: str | None = None
    infer_ms: list[float] = field(default_factory=list)
    end2end_ms: list[float] = field(default_factory=list)
    phase_ms: dict[str, list[float]] = field(default_factory=dict)  # backends with phase timings (TensorRT)
    tracker: AccuracyTracker | None = None


class References:
    """Reference Segmenters, one per input size, opened on first use into ``resources`` (which closes them):
    an eager checkpoint on torch, or for models that have none (adopted ONNX) an fp32 ONNX on its backend."""

    def __init__(self, path: str, device: str, threads: int | None, resources: contextlib.ExitStack) -> None:
        self.path, self._device, self._threads, self._resources = path, device, threads, resources
        self._by_size: dict[tuple[int, int], Segmenter] = {}
        self.trackers: dict[tuple[int, int], AccuracyTracker] = {}

    def at(self, size: tuple[int, int]) -> Segmenter:
        if size not in self._by_size:
            self._by_size[size] = self._resources.enter_context(Segmenter(
                self.path, device=self._device, input_size=size, threads=self._threads))
        return self._by_size[size]


def guard(row: Row, action: Callable[[], object]) -> None:
    """Run ``action`` for ``row`` unless it already failed; a failure marks the row failed."""
    if row.error is not None:
        return
    try:
        action()
    except Exception as exc:  # backends raise their own types; the error is kept in the row, not hidden
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def time_infer(rows: list[Row], samples: list[Sample], batch: int, warmup: Budget, iters: Budget, block: int,
               settle: int, on_progress: Progress | None) -> None:
    """Warm each row up alone, then time ``Segmenter.run`` on a prepared batch in rounds of blocks."""
    batches: dict[int, np.ndarray] = {}
    for row in rows:
        def build(row=row):
            meta = row.segmenter.meta
            images = [cv2.imread(str(samples[i % len(samples)][1])) for i in range(batch)]
            batches[id(row)] = np.concatenate([prepare(image, meta.preprocess, meta.io)[0] for image in images])
        guard(row, build)
    for index, row in enumerate(rows):
        guard(row, lambda row=row: _repeat(row.segmenter, batches[id(row)], warmup))
        if on_progress:
            on_progress("warm-up", index + 1, len(rows))
    started = time.perf_counter()

    def one_block(row: Row) -> None:
        count = min(block, iters.iterations - len(row.infer_ms)) if iters.iterations else block
        guard(row, lambda: _timed_block(row, batches[id(row)], count, settle))

    def after_round() -> None:
        if on_progress:
            done = min(len(row.infer_ms) for row in rows)
            on_progress("infer", done, iters.iterations or done)

    take_turns(rows, one_block, lambda row: _wants_more(row, iters, started, len(rows)), after_round)


def take_turns(participants: list[T], one_block: Callable[[T], None], wants_more: Callable[[T], bool],
               after_round: Callable[[], None] = lambda: None) -> None:
    """Rounds in which every participant that ``wants_more`` runs ``one_block`` in turn, until none does.

    The block scheduler of every side-by-side timing here: drift hits every participant alike, and
    each block can begin with untimed settling calls so no one is timed while another's threads spin.
    """
    while any(wants_more(participant) for participant in participants):
        for participant in participants:
            if wants_more(participant):
                one_block(participant)
        after_round()


def _timed_block(row: Row, batch: np.ndarray, count: int, settle: int) -> None:
    for _ in range(settle):  # let the previous runtime's threads go quiet
        row.segmenter.run(batch)
    for _ in range(count):
        tick = time.perf_counter()
        row.segmenter.run(batch)
        row.infer_ms.append((time.perf_counter() - tick) * 1000)
        for phase, ms in row.segmenter.backend.phase_timings_ms.items():
            row.phase_ms.setdefault(f"{phase}_ms", []).append(ms)


def _wants_more(row: Row, budget: Budget, started: float, row_count: int) -> bool:
    if row.error is not None:
        return False
    if budget.iterations:
        return len(row.infer_ms) < budget.iterations
    return time.perf_counter() - started < budget.seconds * row_count


def _repeat(segmenter: Segmenter, batch: np.ndarray, budget: Budget) -> None:
    started, done = time.perf_counter(), 0
    while (done < budget.iterations) if budget.iterations else (time.perf_counter() - started < budget.seconds):
        segmenter.run(batch)
        done += 1


def accuracy_pass(rows: list[Row], samples: list[Sample], references: References | None, num_classes: int,
                  ignore_index: int | None, block: int, settle: int, on_progress: Progress | None) -> None:
    """Every row's mask for every image (end2end timed, in blocks) into its tracker; the reference's per size."""
    for start in range(0, len(samples), block):
        chunk = samples[start:start + block]
        reference_masks: list[dict] = [{} for _ in chunk]
        if references is not None:
            for (_, path, labels), masks in zip(chunk, reference_masks):
                image = cv2.imread(str(path))
                for size in {row.input_size for row in rows}:
                    masks[size] = references.at(size).predict(image)
                    tracker = references.trackers.setdefault(size, AccuracyTracker(num_classes, ignore_index))
                    tracker.update(str(path), masks[size], None, labels)
        for row in rows:
            guard(row, lambda row=row, chunk=chunk, masks=reference_masks: _score_chunk(row, chunk, masks, settle))
        if on_progress:
            on_progress("accuracy", start + len(chunk), len(samples))


def _score_chunk(row: Row, chunk: list[Sample], reference_masks: list[dict], settle: int) -> None:
    for _ in range(settle):
        row.segmenter.predict(cv2.imread(str(chunk[0][1])))
    for (_, path, labels), masks in zip(chunk, reference_masks):
        tick = time.perf_counter()
        mask = row.segmenter.predict(cv2.imread(str(path)))
        row.end2end_ms.append((time.perf_counter() - tick) * 1000)
        row.tracker.update(str(path), mask, masks.get(row.input_size), labels)
