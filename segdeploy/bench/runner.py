"""``bench_artifacts``: many artifacts (and sizes) in one run: latency, accuracy, agreement.

Every artifact gets the same inputs. ``infer`` times the backend call on a prepared batch;
``end2end`` times decode (a PNG/JPEG read from disk) + prepare + backend + postprocess per
image during the accuracy pass. Both are taken in rounds of blocks (``bench/passes.py``).
Every Segmenter opened is closed when the run ends, also when it fails.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.bench.agreement import AccuracyTracker
from segdeploy.bench.passes import Progress, References, Row, Sample, accuracy_pass, guard, time_infer
from segdeploy.bench.results import BenchReport, BenchResult, ReferenceResult
from segdeploy.bench.spec import ArtifactSpec, parse_spec
from segdeploy.bench.stats import Budget, latency_stats
from segdeploy.errors import BadInputError, SegdeployError, check_range
from segdeploy.metadata import ArtifactMeta
from segdeploy.runtime.segmenter import Segmenter


@dataclass(frozen=True)
class BenchConfig:
    artifacts: tuple[str, ...]  # specs PATH[@BACKEND[:OPTION]]
    reference: str | None = None  # eager checkpoint; None: the first artifact's source checkpoint if present
    data: str | None = None  # labelled dataset; None: synthetic scenes (agreement only)
    split: str = "val"
    num_images: int | None = None  # None: the whole split (synthetic scenes: SYNTHETIC_IMAGES)
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

    def __post_init__(self) -> None:
        if not self.artifacts:
            raise BadInputError("give at least one artifact to bench (--artifact PATH)")
        check_range(self.batch, "--batch", low=1)
        if self.num_images is not None:
            check_range(self.num_images, "--num-images", low=1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["input_sizes"] = [list(size) for size in self.input_sizes]
        return data


SYNTHETIC_IMAGES = 50  # scenes benched when there is no dataset and no --num-images


def bench_artifacts(config: BenchConfig, on_progress: Progress | None = None) -> BenchReport:
    """Benchmark every ``config.artifacts`` spec at every size; see the module docstring."""
    from segdeploy.bench.machine import machine_info

    specs = [parse_spec(text) for text in config.artifacts]
    metas = {spec: read_artifact_meta(spec.path) for spec in specs}
    check_comparable(metas)
    first = metas[specs[0]]
    warnings: list[str] = []
    with tempfile.TemporaryDirectory(prefix="segdeploy-bench.") as scratch, contextlib.ExitStack() as resources:
        samples = _samples(config, first, Path(scratch), warnings)
        rows = [Row(spec, size) for spec in specs
                for size in (config.input_sizes or [metas[spec].preprocess.eval_size])]
        for row in rows:
            guard(row, lambda row=row: _open(row, config, resources))
        references = _references(config, first, resources)
        time_infer(rows, samples, config.batch, config.warmup, config.iters, config.block, config.settle, on_progress)
        accuracy_pass(rows, samples, references, first.num_classes, first.ignore_index, config.block, config.settle,
                      on_progress)
        results = tuple(_result(row, first, references, config.batch) for row in rows)
        reference = _reference_result(references, rows[0].input_size, first) if references else None
    return BenchReport(config, machine_info(config.threads), results, reference,
                       tuple(name for name, _, _ in samples), tuple(warnings))


def check_comparable(metas: dict[ArtifactSpec, ArtifactMeta]) -> None:
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


def _samples(config: BenchConfig, meta: ArtifactMeta, scratch: Path, warnings: list[str]) -> list[Sample]:
    """(name, image file, labels or None): the split's images, or synthetic scenes written as PNG."""
    if config.data:
        from segdeploy.data.datasets import open_dataset

        dataset = open_dataset(config.data, config.split)
        if len(dataset) == 0:
            raise BadInputError(f"{config.data}:{config.split} holds no images")
        if dataset.skipped:
            warnings.append(f"{dataset.skipped} files of {config.data}:{config.split} have no image/mask partner "
                            "and were skipped")
        samples = []
        for index in range(min(config.num_images or len(dataset), len(dataset))):
            image_path, mask_path = dataset.pairs[index]
            labels = dataset[index].mask
            _check_labels(labels, mask_path, meta)
            samples.append((image_path.name, image_path, labels))
        return samples
    from segdeploy.data.synthetic import make_scenes

    images, _ = make_scenes(config.num_images or SYNTHETIC_IMAGES, *meta.preprocess.eval_size, seed=2024)
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


def _open(row: Row, config: BenchConfig, resources: contextlib.ExitStack) -> None:
    row.segmenter = resources.enter_context(Segmenter(
        row.spec.path, backend=row.spec.backend, device=config.device, input_size=row.input_size,
        threads=config.threads, **row.spec.segmenter_options()))
    row.tracker = AccuracyTracker(row.segmenter.meta.num_classes, row.segmenter.meta.ignore_index)


def _references(config: BenchConfig, meta: ArtifactMeta, resources: contextlib.ExitStack) -> References | None:
    """The eager reference (``--reference`` or the artifacts' source checkpoint), or None without one."""
    if config.reference:
        if not Path(config.reference).is_file():
            raise BadInputError(f"reference checkpoint not found: {config.reference}")
        read_artifact_meta(config.reference)  # one clear line now if it cannot be a reference
        return References(config.reference, config.device, config.threads, resources)
    path = (meta.source or {}).get("path")
    if path is None or not Path(path).is_file() or not _carries_metadata(path):
        return None  # no reference: the report has no agreement column, as when the source is gone
    return References(path, config.device, config.threads, resources)


def _carries_metadata(path: str) -> bool:
    """Whether a source file can serve as reference (an adopted ONNX's source is the foreign file: no)."""
    try:
        read_artifact_meta(path)
    except SegdeployError:
        return False
    return True


def _result(row: Row, meta: ArtifactMeta, references: References | None, batch: int) -> BenchResult:
    latency = {name: latency_stats(values) for name, values in
               (("infer", row.infer_ms), ("end2end", row.end2end_ms), *row.phase_ms.items()) if values}
    per_call = {"infer": batch, "end2end": 1}  # images per timed call
    accuracy = None
    if row.tracker is not None and row.error is None:
        reference_tracker = references.trackers.get(row.input_size) if references else None
        accuracy = row.tracker.summary(meta.class_names, reference_tracker)
    return BenchResult(
        spec=row.spec, precision=_precision(row.segmenter), input_size=row.input_size, batch=batch,
        size_mb=_size_bytes(row.spec.path) / 1e6, error=row.error, latency_ms=latency,
        latency_samples_ms={"infer": row.infer_ms, "end2end": row.end2end_ms},
        throughput_ips={mode: per_call[mode] * 1000 / latency[mode].mean for mode in per_call if mode in latency},
        accuracy=accuracy, threads=row.segmenter.backend.threads if row.segmenter else None)


def _reference_result(references: References, size: tuple[int, int], meta: ArtifactMeta) -> ReferenceResult | None:
    tracker = references.trackers.get(size)
    return ReferenceResult(str(references.path), size, tracker.summary(meta.class_names, None)) if tracker else None


def _precision(segmenter: Segmenter | None) -> str:
    if segmenter is None:
        return "?"
    precision = segmenter.meta.precision.value
    executed = segmenter.backend.execution_precision
    return f"{precision} ({executed} exec)" if executed and executed != "f32" else precision


def _size_bytes(path: Path) -> int:
    files = [path, path.with_suffix(".bin")] if path.suffix == ".xml" else [path]
    return sum(file.stat().st_size for file in files if file.is_file())
