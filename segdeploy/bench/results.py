"""The bench's typed results and their one JSON codec (``to_dict``; the documented keys of bench.json).

Readers (tables, Markdown, plots, the demo, benchmark scripts) use the fields; only ``to_dict``
turns them into the JSON layout, where each result's accuracy keys sit beside its latency.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segdeploy.bench.spec import ArtifactSpec
from segdeploy.bench.stats import LatencyStats

if TYPE_CHECKING:  # runner.py builds these results from its config: a runtime import would be circular
    from segdeploy.bench.runner import BenchConfig

SCHEMA_VERSION = 2  # 2: config.engines became config.artifacts; num_images and the machine's ISA added


@dataclass(frozen=True)
class ClassFlip:
    """Pixels the reference calls ``reference`` and the artifact calls ``artifact``."""

    reference: str
    artifact: str
    pixels: int
    fraction_of_reference_class: float


@dataclass(frozen=True)
class WorstImage:
    image: str  # file name
    path: str
    agreement: float  # pixel agreement with the reference


@dataclass(frozen=True)
class AccuracySummary:
    """Accuracy on ground truth (None without labels) and against the reference (None without one)."""

    miou: float | None = None
    per_class_iou: dict[str, float | None] | None = None
    pixel_acc: float | None = None
    delta_miou: float | None = None  # points vs the reference's mIoU
    miou_vs_reference: float | None = None  # agreement mIoU, the reference's masks taken as truth
    agreement_vs_reference: float | None = None  # pixel agreement
    per_class_iou_change: dict[str, float | None] | None = None
    top_flips: tuple[ClassFlip, ...] | None = None
    worst_images: tuple[WorstImage, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The six documented keys always; the optional details only when measured."""
        data = dataclasses.asdict(self)
        optional = ("per_class_iou_change", "top_flips", "worst_images")
        return {key: value for key, value in data.items() if key not in optional or value is not None}


@dataclass(frozen=True)
class BenchResult:
    """One artifact at one input size."""

    spec: ArtifactSpec
    precision: str  # the artifact's, with what the runtime executed when it differs, e.g. "fp32 (bf16 exec)"
    input_size: tuple[int, int]
    batch: int
    size_mb: float
    error: str | None = None  # set when the row failed; the other rows went on
    latency_ms: dict[str, LatencyStats] = field(default_factory=dict)  # infer, end2end, phases (h2d_ms, ...)
    latency_samples_ms: dict[str, list[float]] = field(default_factory=dict)
    throughput_ips: dict[str, float] = field(default_factory=dict)  # images per second, infer and end2end
    accuracy: AccuracySummary | None = None
    threads: int | None = None  # CPU threads the backend inferred with, as it reports them; None on a GPU

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def infer(self) -> LatencyStats | None:
        return self.latency_ms.get("infer")

    def to_dict(self) -> dict[str, Any]:
        data = {"artifact": str(self.spec.path), "label": self.spec.label, "backend": str(self.spec.backend),
                "precision": self.precision, "input_size": list(self.input_size), "batch": self.batch,
                "status": "ok" if self.ok else "failed", "error": self.error, "size_mb": self.size_mb,
                "latency_ms": {name: stats.to_dict() for name, stats in self.latency_ms.items()},
                "latency_samples_ms": self.latency_samples_ms, "segmenter_options": self.spec.segmenter_options(),
                "threads": self.threads, "throughput_ips": self.throughput_ips}
        return {**data, **(self.accuracy.to_dict() if self.accuracy else {})}


@dataclass(frozen=True)
class ReferenceResult:
    """The eager reference's own accuracy on ground truth, at the first input size."""

    artifact: str
    input_size: tuple[int, int]
    accuracy: AccuracySummary

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "backend": "torch", "input_size": list(self.input_size),
                **self.accuracy.to_dict()}


@dataclass(frozen=True)
class BenchReport:
    config: BenchConfig  # the settings this report was measured with
    machine: dict[str, Any]  # machine_info(): CPU, ISA flags, threads, versions
    results: tuple[BenchResult, ...]
    reference: ReferenceResult | None
    images: tuple[str, ...]  # evaluated image files, in order
    warnings: tuple[str, ...] = ()

    @property
    def failed(self) -> list[BenchResult]:
        return [result for result in self.results if not result.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "machine": self.machine, "config": self.config.to_dict(),
                "reference": self.reference.to_dict() if self.reference else None, "images": list(self.images),
                "num_images": len(self.images), "warnings": list(self.warnings),
                "results": [result.to_dict() for result in self.results]}
