"""Configuration and report types of the quantization stage."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from segdeploy.data.calibration_set import Selection
from segdeploy.errors import check_range, convert_choices
from segdeploy.metadata import Precision


class Target(StrEnum):
    """What an INT8 artifact is built for."""

    TENSORRT = "tensorrt"  # symmetric int8, Q/DQ on weighted-op inputs, strongly typed remainder
    CPU = "cpu"  # what ONNX Runtime's and OpenVINO's x86 kernels run
    OPENVINO = "openvino"  # an OpenVINO IR quantized by NNCF (the `nncf` extra), gated on OpenVINO


class BiasCorrection(StrEnum):
    """NNCF's bias correction after quantization (openvino target)."""

    FAST = "fast"  # one statistics pass (NNCF's default)
    FULL = "full"  # layer by layer, much slower


class CalibrationMethod(StrEnum):
    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class CpuActivations(StrEnum):
    """Activation type of the cpu target."""

    U8 = "u8"  # asymmetric uint8
    S8 = "s8"  # symmetric int8


class IsaTarget(StrEnum):
    """Which CPUs a cpu-target INT8 artifact must stay accurate on."""

    # 7-bit weights: u8 x s8 products never saturate vpmaddubsw's int16, so the artifact keeps its
    # accuracy on AVX2 CPUs without VNNI as on VNNI/AMX ones (unet_small on AVX2: -0.22 points vs
    # -9.5 with 8-bit weights, same speed; benchmarks/int8_recipes.py).
    PORTABLE = "portable"
    # the full 8-bit weight range where this CPU multiplies without saturating (VNNI, AMX, ARM
    # dot product); elsewhere the same as portable. Gated here, warned about on other CPU classes.
    NATIVE = "native"


class HighPrecision(StrEnum):
    """Type of the unquantized remainder of a tensorrt-target INT8 model."""

    FP16 = "fp16"  # as NVIDIA's ModelOpt does: a strongly typed engine runs it in FP16
    FP32 = "fp32"


# Without labels the gate reads agreement mIoU with the float model. 0.90 separates, on CamVid val, every
# artifact that lost more than 1 mIoU point (at most 0.849: 8-bit weights on AVX2, the FP16-scale optimiser
# bug, wrong scales) from every one that lost less than 0.3 (at least 0.919: INT8 of every target, FP16,
# NNCF's); 0.98 refused every good static INT8 (benchmarks/gate_calibration.py, QUANTIZATION.md).
GATE_MIN_AGREEMENT = 0.90


@dataclass(frozen=True)
class AccuracyGate:
    """Held-out evaluation after quantization and the thresholds it must meet."""

    eval_data: str | None = None  # dataset folder; None: the calibration dataset's val split if any
    eval_split: str | None = None
    eval_images: int = 50  # at most this many held-out images
    max_miou_drop: float = 1.0  # percentage points vs float, on ground truth (labels present)
    min_agreement: float = GATE_MIN_AGREEMENT  # agreement mIoU fraction (used without labels)

    def __post_init__(self) -> None:
        check_range(self.eval_images, "--eval-images", low=1)
        check_range(self.min_agreement, "--min-agreement", high=1.0)


@dataclass(frozen=True)
class QuantConfig:
    """INT8 static/dynamic settings. ``target`` None picks tensorrt for int8, cpu for int8-dynamic.

    Choices may be given as their strings; they are checked and converted on construction.
    """

    precision: Precision = Precision.INT8
    calib: str | None = None  # calibration source (int8): calibration set file, dataset (split) folder or image folder
    target: Target | None = None
    method: CalibrationMethod = CalibrationMethod.ENTROPY
    percentile: float = 99.999
    num_images: int = 96
    seed: int = 0
    select: Selection = Selection.RANDOM
    per_channel: bool = True
    data_root: str | None = None  # where a calibration set's relative paths resolve
    exclude_nodes: tuple[str, ...] = ()
    exclude_ops: tuple[str, ...] = ()
    exclude_modules: tuple[str, ...] = ()  # module paths (e.g. "down.1", "encoder.stages.0.blocks.1")
    sensitivity: bool = False  # rank module groups by the agreement they recover in float
    sensitivity_images: int = 8  # held-out images per sensitivity trial
    auto_exclude: int = 0  # keep this many of the most sensitive groups in float (implies sensitivity)
    cpu_activations: CpuActivations = CpuActivations.U8
    isa: IsaTarget = IsaTarget.PORTABLE  # cpu target: portable 7-bit weights, or this CPU's full range
    high_precision: HighPrecision = HighPrecision.FP16
    bias_correction: BiasCorrection = BiasCorrection.FAST  # openvino target
    gate: AccuracyGate = AccuracyGate()

    def __post_init__(self) -> None:
        convert_choices(self, {"precision": (Precision, "--precision"), "target": (Target, "--target"),
                               "bias_correction": (BiasCorrection, "--bias-correction"),
                               "method": (CalibrationMethod, "--method"), "select": (Selection, "--select"),
                               "cpu_activations": (CpuActivations, "--cpu-activations"), "isa": (IsaTarget, "--isa"),
                               "high_precision": (HighPrecision, "--high-precision")})
        check_range(self.percentile, "--percentile", low=0.0, high=100.0)
        check_range(self.num_images, "--num-images", low=1)
        check_range(self.sensitivity_images, "--sensitivity-images", low=1)
        check_range(self.auto_exclude, "--auto-exclude", low=0)

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
    passed: bool  # on every runtime measured
    runtime: str = "onnxruntime"  # where the quantized model ran for the figures above
    other_runtimes: tuple[AccuracyReport, ...] = ()  # the same artifact on the other CPU runtimes installed


@dataclass(frozen=True)
class SensitivityRow:
    group: str
    nodes: int
    agreement_miou: float  # with this group left in float
    recovered: float  # agreement_miou minus the fully quantized model's


@dataclass(frozen=True)
class SensitivityReport:
    images: int
    baseline_agreement_miou: float  # fully quantized (apart from the user's exclusions)
    rows: tuple[SensitivityRow, ...]  # most recovered first
    seconds: float
    auto_excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class CalibrationRecord:
    images: int
    digest: str
    source: str
    set_file: str  # the ``<out stem>.calib.json`` written beside the artifact
    peak_rss_mb: float  # while calibrating


@dataclass(frozen=True)
class QuantRecord:
    """How an artifact was quantized: its metadata's history entry and the report's recipe fields."""

    target: Target
    op_types: tuple[str, ...] = ()
    per_channel: bool | None = None
    weights: str | None = None  # e.g. "int8 symmetric", "int8 symmetric, 7-bit range"
    activations: str | None = None  # static INT8 only
    method: CalibrationMethod | None = None
    percentile: float | None = None
    high_precision: HighPrecision | None = None  # tensorrt-target INT8: the remainder's type
    float_nodes: tuple[str, ...] = ()  # left in float by exclusions
    exclude_modules: tuple[str, ...] = ()
    auto_excluded: tuple[str, ...] = ()
    residual_adds: int = 0
    linear_nodes: int | None = None  # dynamic INT8: MatMul/Gemm nodes quantized
    keep_fp32_ops: tuple[str, ...] = ()  # fp16
    calibration: CalibrationRecord | None = None
    isa_class: str | None = None  # cpu/openvino target: the CPU class (segdeploy.isa) the artifact was gated on
    portable: bool | None = None  # cpu/openvino target: accurate on every CPU class (False: check isa_class)
    quantizer: str | None = None  # what placed the Q/DQ or FakeQuantize nodes when not ONNX Runtime (e.g. "nncf 3.4.0")
    recipe: dict[str, str] | None = None  # that quantizer's settings (openvino target: NNCF's preset, model type...)

    def to_dict(self) -> dict[str, Any]:
        """The set fields (None dropped), JSON-native."""
        return {name: value for name, value in dataclasses.asdict(self).items() if value is not None}


@dataclass(frozen=True)
class QuantReport:
    output: str | None
    precision: Precision
    target: Target
    method: CalibrationMethod | None
    seconds: float
    calibration_images: int
    calibration_digest: str | None
    calibration_peak_rss_mb: float | None
    size_bytes: int
    quantized_ops: dict[str, int]
    accuracy: AccuracyReport | None
    notes: tuple[str, ...] = ()
    sensitivity: SensitivityReport | None = None  # when --sensitivity/--auto-exclude ran
    float_nodes: tuple[str, ...] = ()  # nodes left in float by exclusions

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
