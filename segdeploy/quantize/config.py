"""Configuration and report types of the quantization stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


class Target:
    TENSORRT = "tensorrt"
    CPU = "cpu"


METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class AccuracyGate:
    """Held-out evaluation after quantization and the thresholds it must meet."""

    eval_data: str | None = None  # dataset folder; None: the calibration dataset's val split if any
    eval_split: str | None = None
    eval_images: int = 50  # at most this many held-out images
    max_miou_drop: float = 1.0  # percentage points vs float, on ground truth (labels present)
    min_agreement: float = 0.98  # agreement mIoU fraction (used without labels)


@dataclass(frozen=True)
class QuantConfig:
    """INT8 static/dynamic settings. ``target`` None picks tensorrt for int8, cpu for int8-dynamic."""

    target: str | None = None
    method: str = "entropy"
    percentile: float = 99.999
    num_images: int = 96
    seed: int = 0
    select: str = "random"
    per_channel: bool = True
    data_root: str | None = None  # where a manifest's relative paths resolve
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = ()
    exclude_modules: tuple[str, ...] = ()  # module paths (e.g. "down.1", "encoder.stages.0.blocks.1")
    sensitivity: bool = False  # rank module groups by the agreement they recover in float
    sensitivity_images: int = 8  # held-out images per sensitivity trial
    auto_exclude: int = 0  # keep this many of the most sensitive groups in float (implies sensitivity)
    cpu_activations: str = "u8"  # "u8" (asymmetric uint8) or "s8" (symmetric int8) for target cpu
    # tensorrt target: type of the unquantized remainder. FP16 as NVIDIA's ModelOpt does, so a
    # strongly typed engine runs it in FP16; "fp32" keeps it in FP32.
    high_precision: str = "fp16"
    gate: AccuracyGate = AccuracyGate()

    def replace(self, **changes: Any) -> QuantConfig:
        return dataclasses.replace(self, **changes)


# Ops whose FP16 versions lose range or precision (resize weights, softmax over window
# tokens, LayerNorm statistics); they stay FP32 in every FP16 conversion.
FRAGILE_FP16_OPS = ("Resize", "Softmax", "ReduceMean", "LayerNormalization", "Pow", "Sqrt")
MIN_FP16_QDQ_OPSET = 19  # Q/DQ with FP16 scales


@dataclass(frozen=True)
class Fp16Config:
    keep_fp32_ops: tuple[str, ...] = FRAGILE_FP16_OPS
    gate: AccuracyGate = AccuracyGate()


@dataclass(frozen=True)
class AccuracyReport:
    images: int
    source: str
    pixel_agreement: float
    agreement_miou: float  # mIoU of the quantized prediction taking the float one as reference
    miou_float: float | None  # against ground truth, when labels exist
    miou_quantized: float | None
    miou_drop_points: float | None
    gate: str  # which gate applied and its threshold
    passed: bool


@dataclass(frozen=True)
class QuantReport:
    output: str | None
    precision: str
    target: str
    method: str | None
    seconds: float
    calibration_images: int
    calibration_digest: str | None
    calibration_peak_rss_mb: float | None
    size_bytes: int
    quantized_ops: dict[str, int]
    accuracy: AccuracyReport | None
    notes: tuple[str, ...] = ()
    sensitivity: Any = None  # SensitivityReport when --sensitivity/--auto-exclude ran
    float_nodes: tuple[str, ...] = ()  # nodes left in float by exclusions

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
