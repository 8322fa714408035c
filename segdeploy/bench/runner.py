"""``run_bench``: many artifacts (and sizes) in one run: latency, accuracy, agreement.

Every artifact gets the same inputs. Latency is taken in rounds, each artifact running a
block of iterations in turn (after a few untimed settling calls), so machine drift does not
favour one artifact and no artifact is timed while another runtime's threads still spin. ``infer`` times the backend
call on a prepared batch; ``end2end`` times decode (a PNG/JPEG read from disk) + prepare +
backend + postprocess per image, during the accuracy pass, also round-robin. A row that
fails is recorded with its error and dropped from later rounds; the others go on.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.bench.agreement import AccuracyTracker
from segdeploy.bench.spec import EngineSpec, parse_spec
from segdeploy.bench.stats import Budget, latency_stats
from segdeploy.data.preprocess import prepare
from segdeploy.errors import BadInputError
from segdeploy.metadata import ArtifactMeta
from segdeploy.runtime.segmenter import Segmenter

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class BenchConfig:
    engines: tuple[str, ...]
    reference: str | None = None  # eager checkpoint; None: the first artifact's source checkpoint if present
    data: str | None = None  # labelled dataset; None: synthetic scenes (agreement only)
    split: str = "val"
    num_images: int = 50
    batch: int = 1
    input_sizes: tuple[tuple[int, int], ...] = ()  # empty: each artifact's eval size
    warmup: Budget = Budget(iterations=10)
    iters: Budget = Budget(iterations=50)
    threads: int | None = None
    device: str = "auto"
    # Artifacts take turns in blocks: ``settle`` untimed calls, then ``block`` timed ones. Switching
    # runtimes on every call measured the previous runtime's spinning threads (2-core machine:
    # eager torch 22 ms round-robin vs 10 ms alone; blocks of 20 after 2 settling calls: 10 ms).
    block: int = 10
    settle: int = 2


@dataclass
class Row:
    spec: EngineSpec
    input_size: tuple[int, int]
    segmenter: Segmenter | None = None
    error: str | None = None
    infer_ms: list[float] = field(default_factory=list)
    end2end_ms: list[float] = field(default_factory=list)
    phase_ms: dict[str, list[float]] = field(default_factory=dict)  # backends with phase timings (TensorRT)
    tracker: AccuracyTracker | None = None


@dataclass(frozen=True)
class BenchReport:
    config: dict
    machine: dict
    results: list[dict]
    reference: dict | None
    images: list[str]  # evaluated image files, in order
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> list[dict]:
        return [result for result in self.results if result["status"] == "failed"]

    def to_dict(self) -> dict:
        return {"schema_version": SCHEMA_VERSION, "machine": self.machine, "config": self.config,
                "reference": self.reference, "images": self.images, "warnings": list(self.warnings),
                "results": self.results}


def run_bench(config: BenchConfig, on_progress: Callable[[str, int, int], None] | None = None) -> BenchReport:
    """Benchmark every ``config.engines`` spec at every size; see the module docstring."""
    from segdeploy.bench.machine import machine_info

    if config.batch < 1 or config.num_images < 1:
        raise BadInputError("--batch and --num-images must be >= 1")
    specs = [parse_spec(text) for text in config.engines]
    metas = {spec: read_artifact_meta(spec.path) for spec in specs}
    check_comparable(metas)
    first = metas[specs[0]]
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="segdeploy-bench.") as scratch:
        samples = _samples(config, first, Path(scratch), warnings)
        sizes = {spec: config.input_sizes or [metas[spec].preprocess.eval_size] for spec in specs}
        rows = [Row(spec, size) for spec in specs for size in sizes[spec]]
        for row in rows:
            _guard(row, lambda row=row: _open(row, config))
        reference = _reference(config, first)
        _time_infer(rows, samples, config, on_progress)
        reference_result = _accuracy_pass(rows, samples, reference, first, config, on_progress)
    results = [_result(row, first, reference_result, config.batch) for row in rows]
    for row in rows:
        if row.segmenter is not None:
            row.segmenter.close()
    if reference is not None:
        reference.close()
    return BenchReport(_config_dict(config), machine_info(config.threads), results,
                       reference_result and reference_result["summary"], [name for name, _, _ in samples],
                       tuple(warnings))


def check_comparable(metas: dict[EngineSpec, ArtifactMeta]) -> None:
    """Artifacts with different classes or preprocessing cannot share one table (BadInputError)."""
    specs = list(metas)
    base = metas[specs[0]]
    for spec in specs[1:]:
        other = metas[spec]
        fields = [name for name in ("num_classes", "class_names", "ignore_index") if getattr(base, name) !=
                  getattr(other, name)]
        # eval size and divisor belong to each model (each pads and resizes for itself); the rest is the contract
        fields += [f"preprocess.{f.name}" for f in dataclasses.fields(base.preprocess)
                   if f.name not in ("eval_size", "divisor")
                   and getattr(base.preprocess, f.name) != getattr(other.preprocess, f.name)]
        if fields:
            raise BadInputError(f"{spec.label} and {specs[0].label} cannot be compared: {', '.join(fields)} differ")


def _samples(config: BenchConfig, meta: ArtifactMeta, scratch: Path,
             warnings: list[str]) -> list[tuple[str, Path, np.ndarray | None]]:
    """(name, image file, labels or None): the split's first images, or synthetic scenes written as PNG."""
    if config.data:
        from segdeploy.data.datasets import open_dataset

        dataset = open_dataset(config.data, config.split)
        if len(dataset) == 0:
            raise BadInputError(f"{config.data}:{config.split} holds no images")
        if dataset.skipped:
            warnings.append(f"{dataset.skipped} files of {config.data}:{config.split} have no image/mask partner "
                            "and were skipped")
        samples = []
        for index in range(min(config.num_images, len(dataset))):
            image_path, mask_path = dataset.pairs[index]
            labels = dataset[index].mask
            _check_labels(labels, mask_path, meta)
            samples.append((image_path.name, image_path, labels))
        return samples
    from segdeploy.data.synthetic import make_scenes

    images, _ = make_scenes(config.num_images, *meta.preprocess.eval_size, seed=2024)
    samples = []
    for index, image in enumerate(images):
        path = scratch / f"scene_{index:04d}.png"
        cv2.imwrite(str(path), image)
        samples.append((path.name, path, None))
    return samples


def _check_labels(labels: np.ndarray, mask_path: Path, meta: ArtifactMeta) -> None:
    """Labels must be the model's classes or its ignore index (the dataset checks only its own classes)."""
    bad = (labels >= meta.num_classes) & (labels != (meta.ignore_index if meta.ignore_index is not None else -1))
    if bad.any():
        raise BadInputError(f"{mask_path}: label {int(labels[bad].max())} is outside the "
                            f"{meta.num_classes} classes and not the ignore index {meta.ignore_index}")


def _open(row: Row, config: BenchConfig) -> None:
    row.segmenter = Segmenter(row.spec.path, backend=row.spec.backend, device=config.device,
                              input_size=row.input_size, threads=config.threads, **row.spec.segmenter_options())
    row.segmenter.__enter__()
    meta = row.segmenter.meta
    row.tracker = AccuracyTracker(meta.num_classes, meta.ignore_index)


class _References:
    """Eager reference Segmenters, one per input size, opened on first use."""

    def __init__(self, path: str, config: BenchConfig) -> None:
        self.path, self._config = path, config
        self._by_size: dict[tuple[int, int], Segmenter] = {}

    def at(self, size: tuple[int, int]) -> Segmenter:
        if size not in self._by_size:
            self._by_size[size] = Segmenter(self.path, backend="torch", device=self._config.device, input_size=size,
                                            threads=self._config.threads).__enter__()
        return self._by_size[size]

    def close(self) -> None:
        for segmenter in self._by_size.values():
            segmenter.close()


def _reference(config: BenchConfig, meta: ArtifactMeta) -> _References | None:
    """The eager reference (``--reference`` or the artifacts' source checkpoint), or None without one."""
    path = config.reference or (meta.source or {}).get("path")
    if path is None or not Path(path).is_file():
        if config.reference:
            raise BadInputError(f"reference checkpoint not found: {config.reference}")
        return None
    return _References(path, config)


def _guard(row: Row, action: Callable[[], object]) -> None:
    """Run ``action`` for ``row`` unless it already failed; a failure marks the row failed."""
    if row.error is not None:
        return
    try:
        action()
    except Exception as exc:  # backends raise their own types; the error is kept in the row, not hidden
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]


def _time_infer(rows: list[Row], samples, config: BenchConfig, on_progress) -> None:
    batches = {}
    for row in rows:
        def build(row=row):
            meta = row.segmenter.meta
            images = [cv2.imread(str(samples[i % len(samples)][1])) for i in range(config.batch)]
            batches[id(row)] = np.concatenate([prepare(image, meta.preprocess, meta.io)[0] for image in images])
        _guard(row, build)
    for index, row in enumerate(rows):  # warm-up: each artifact alone, untimed
        _guard(row, lambda row=row: _repeat(row.segmenter, batches[id(row)], config.warmup))
        if on_progress:
            on_progress("warm-up", index + 1, len(rows))
    budget, started = config.iters, time.perf_counter()
    while any(_wants_more(row, budget, started, len(rows)) for row in rows):
        for row in rows:
            if not _wants_more(row, budget, started, len(rows)):
                continue
            block = min(config.block, budget.iterations - len(row.infer_ms)) if budget.iterations else config.block

            def once(row=row, block=block):
                for _ in range(config.settle):  # let the previous runtime's threads go quiet
                    row.segmenter.run(batches[id(row)])
                for _ in range(block):
                    tick = time.perf_counter()
                    row.segmenter.run(batches[id(row)])
                    row.infer_ms.append((time.perf_counter() - tick) * 1000)
                    for phase, ms in row.segmenter.backend.phase_timings_ms.items():
                        row.phase_ms.setdefault(f"{phase}_ms", []).append(ms)
            _guard(row, once)
        if on_progress:
            done = min(len(row.infer_ms) for row in rows)
            on_progress("infer", done, budget.iterations or done)


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


def _accuracy_pass(rows: list[Row], samples, reference, meta: ArtifactMeta, config: BenchConfig,
                   on_progress) -> dict | None:
    """Masks of every row for every image, end2end timed in blocks; the reference's masks per size."""
    reference_trackers: dict[tuple[int, int], AccuracyTracker] = {}
    for start in range(0, len(samples), config.block):
        chunk = samples[start:start + config.block]
        references: list[dict] = [{} for _ in chunk]
        if reference is not None:
            for (_, path, labels), masks in zip(chunk, references):
                image = cv2.imread(str(path))
                for size in {row.input_size for row in rows}:
                    masks[size] = reference.at(size).predict(image)
                    tracker = reference_trackers.setdefault(size, AccuracyTracker(meta.num_classes, meta.ignore_index))
                    tracker.update(str(path), masks[size], None, labels)
        for row in rows:
            def once(row=row, chunk=chunk, references=references):
                for _ in range(config.settle):
                    row.segmenter.predict(cv2.imread(str(chunk[0][1])))
                for (_, path, labels), masks in zip(chunk, references):
                    tick = time.perf_counter()
                    mask = row.segmenter.predict(cv2.imread(str(path)))
                    row.end2end_ms.append((time.perf_counter() - tick) * 1000)
                    row.tracker.update(str(path), mask, masks.get(row.input_size), labels)
            _guard(row, once)
        if on_progress:
            on_progress("accuracy", start + len(chunk), len(samples))
    if reference is None:
        return None
    size = rows[0].input_size
    summary = {"artifact": str(reference.path), "backend": "torch", "input_size": list(size),
               **reference_trackers[size].summary(meta.class_names, None)}
    return {"trackers": reference_trackers, "summary": summary}


def _result(row: Row, meta: ArtifactMeta, reference: dict | None, batch: int) -> dict:
    segmenter = row.segmenter
    result = {"artifact": str(row.spec.path), "label": row.spec.label, "backend": row.spec.backend,
              "precision": _precision(segmenter, row), "input_size": list(row.input_size),
              "batch": batch, "status": "failed" if row.error else "ok", "error": row.error,
              "size_mb": _size_bytes(row.spec.path) / 1e6}
    latency = {}
    if row.infer_ms:
        latency["infer"] = latency_stats(row.infer_ms).to_dict()
    if row.end2end_ms:
        latency["end2end"] = latency_stats(row.end2end_ms).to_dict()
    latency.update({phase: latency_stats(values).to_dict() for phase, values in row.phase_ms.items()})
    result["latency_ms"] = latency
    result["latency_samples_ms"] = {"infer": row.infer_ms, "end2end": row.end2end_ms}
    result["segmenter_options"] = row.spec.segmenter_options()
    per_call = {"infer": batch, "end2end": 1}  # images per timed call
    result["throughput_ips"] = {mode: per_call[mode] * 1000 / latency[mode]["mean"]
                                for mode in per_call if mode in latency}
    if row.tracker is not None and not row.error:
        reference_tracker = reference["trackers"].get(row.input_size) if reference else None
        result.update(row.tracker.summary(meta.class_names, reference_tracker))
    return result


def _precision(segmenter: Segmenter | None, row: Row) -> str:
    if segmenter is None:
        return "?"
    precision = segmenter.meta.precision.value
    executed = segmenter.backend.execution_precision
    return f"{precision} ({executed} exec)" if executed and executed != "f32" else precision


def _size_bytes(path: Path) -> int:
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return sum(file.stat().st_size for file in files if file.is_file())


def _config_dict(config: BenchConfig) -> dict:
    data = dataclasses.asdict(config)
    data["input_sizes"] = [list(size) for size in config.input_sizes]
    return data
