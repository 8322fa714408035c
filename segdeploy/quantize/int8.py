"""Static INT8 as QDQ, calibrated on real images, for TensorRT or for CPUs.

``tensorrt``: signed int8, symmetric activations and weights (zero point 0), per-channel
weights, no bias Q/DQ (TensorRT rejects int32 bias Q/DQ), Q/DQ only on the inputs of
Conv/ConvTranspose/MatMul/Gemm and of residual Adds (outputs stay float, so the final head
output is not quantized). ``cpu``: uint8 asymmetric activations (or int8 symmetric with
``cpu_activations="s8"``) and int8 per-channel weights, what ONNX Runtime's and OpenVINO's
x86 kernels run fastest, with Q/DQ on pooling, concatenation, padding, slicing and resizing too
(their int8 versions keep the data int8 between convolutions); by default (``isa="portable"``)
the weights use 7 of their 8 bits, so that CPUs without VNNI, whose u8 x s8 products saturate
at int16, compute what VNNI CPUs do.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import io
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import onnx

from segdeploy.artifact_meta import read_metadata
from segdeploy.data.calibration_set import write_calibration_set
from segdeploy.errors import BadInputError, require
from segdeploy.isa import full_range_int8, isa_class
from segdeploy.metadata import Precision
from segdeploy.module_paths import module_groups, nodes_in_modules, residual_adds
from segdeploy.onnx_graph import load_onnx, opset_of
from segdeploy.quantize.accuracy import held_out_images
from segdeploy.quantize.calibration import (
    calibration_method,
    calibration_set_path,
    collect_ranges,
    resolve_calibration,
)
from segdeploy.quantize.config import (
    FRAGILE_FP16_OPS,
    MIN_FP16_QDQ_OPSET,
    CalibrationRecord,
    CpuActivations,
    HighPrecision,
    IsaTarget,
    QuantConfig,
    QuantRecord,
    QuantReport,
    SensitivityReport,
    Target,
)
from segdeploy.quantize.finish import finish, refuse_quantized
from segdeploy.quantize.fp16 import to_fp16
from segdeploy.quantize.sensitivity import rank_groups

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")
# cpu target: Q/DQ on these too, so that ONNX Runtime runs them on int8 (QLinearConcat, NHWC MaxPool, Relu
# folded into the int8 Conv) and drops Transposes and re-quantizations between its NHWC int8 convolutions
# (benchmarks/int8_recipes.py, the `-data` recipes). A Relu beside a node kept in float stays float: ONNX
# Runtime 1.32's optimiser zeroed a float Conv's output behind a Conv whose Relu it had folded
# (tests/quantize/test_sensitivity.py).
CPU_DATA_OPS = ("MaxPool", "Concat", "Pad", "Slice", "Relu", "Resize")


def quantize_int8(onnx_path: str | os.PathLike, out: str | os.PathLike, calib: str,
                  config: QuantConfig = QuantConfig(), on_image=None, on_group=None) -> QuantReport:
    """Calibrate on ``calib`` (calibration set file, dataset or image folder) and write a QDQ INT8 model.

    With ``config.sensitivity``/``auto_exclude`` the ranges are reused to rank module groups
    (``on_group(done, total)`` reports progress) and the ``auto_exclude`` worst stay float.
    """
    require("onnxruntime", "cpu")
    started, out = time.perf_counter(), Path(out)
    model = load_onnx(onnx_path)
    meta = read_metadata(model, str(onnx_path))
    refuse_quantized(model, meta, str(onnx_path))
    plan = _qdq_plan(model, config)
    float_nodes = sorted(set(config.exclude_nodes) | set(nodes_in_modules(model, config.exclude_modules)
                                                          if config.exclude_modules else ()))
    calibration = resolve_calibration(calib, config.num_images, config.seed, config.select, config.data_root)
    # Held-out images are read once: for the sensitivity trials (the first few) and for the gate.
    held_out = held_out_images(config.gate, meta, calibration)
    sensitivity = None
    with tempfile.TemporaryDirectory(prefix="segdeploy-int8.") as scratch:
        plan = dataclasses.replace(plan, scratch=Path(scratch))
        peak_rss = _calibrate(onnx_path, plan, calibration.files, meta, config, on_image)
        if config.sensitivity or config.auto_exclude:
            sensitivity = _rank_and_exclude(model, plan, meta, held_out, float_nodes, config, on_group)
            float_nodes = sorted(set(float_nodes).union(*(plan.groups[group] for group in sensitivity.auto_excluded)))
        quantized = plan.build(float_nodes)
    set_file = calibration_set_path(out)
    record = plan.record(config, tuple(float_nodes), sensitivity, CalibrationRecord(
        len(calibration.files), calibration.set.digest, calibration.set.source, set_file.name,
        round(peak_rss, 1)))
    report = finish(quantized, out, model, meta, precision=Precision.INT8, gate=config.gate, record=record,
                    started=started, held_out=held_out, notes=plan.notes(), sensitivity=sensitivity,
                    runtimes=plan.gate_runtimes())
    write_calibration_set(calibration.set, set_file)
    return report


def _calibrate(onnx_path, plan: _QdqPlan, files: list, meta, config: QuantConfig, on_image) -> float:
    """Pre-process the float model and save calibration ranges in ``plan.scratch``; returns peak RSS (MB)."""
    from onnxruntime.quantization import quant_pre_process
    from onnxruntime.quantization.calibrate import save_tensors_data

    # Symbolic shape inference cannot follow the exporter's dynamic shapes; ONNX's own
    # shape inference and ORT's graph optimisation (Conv+BN folding) still run.
    quant_pre_process(str(onnx_path), str(plan.pre_path), skip_symbolic_shape=True)
    ranges, peak_rss = collect_ranges(plan.pre_path, files, meta, config.method, config.percentile,
                                      plan.symmetric, on_image)
    save_tensors_data(ranges, plan.ranges_path)
    return peak_rss


def _rank_and_exclude(model, plan: _QdqPlan, meta, held_out, float_nodes: list[str], config: QuantConfig,
                      on_group) -> SensitivityReport:
    """Rank module groups with the saved ranges; the ``auto_exclude`` that recover agreement stay float."""
    if not plan.groups:
        raise BadInputError("this ONNX has no Conv, ConvTranspose, MatMul or Gemm left to quantize, so there is "
                            "nothing for --sensitivity to rank")
    images = [image for image, _ in held_out[1][: config.sensitivity_images]]
    sensitivity = rank_groups(model.SerializeToString(), plan.build, meta, images, plan.groups, float_nodes,
                              on_group)
    worst = tuple(row.group for row in sensitivity.rows[: config.auto_exclude] if row.recovered > 0)
    return dataclasses.replace(sensitivity, auto_excluded=worst)


@dataclass(frozen=True)
class _QdqPlan:
    """Everything that turns the pre-processed model and saved ranges into a QDQ model."""

    target: Target
    symmetric: bool
    reduce_range: bool  # 7-bit weights (cpu target, portable): no int16 saturation without VNNI
    per_channel: bool
    fp16_remainder: bool
    method: str
    op_types: tuple[str, ...]
    residual_adds: tuple[str, ...]
    weighted_nodes: tuple[str, ...]
    groups: dict[str, list[str]]  # module group -> its nodes (sensitivity, residual Adds)
    scratch: Path = Path(".")

    @property
    def pre_path(self) -> Path:
        return self.scratch / "pre.onnx"

    @property
    def ranges_path(self) -> Path:
        return self.scratch / "ranges.json"

    def build(self, float_nodes: list[str]) -> onnx.ModelProto:
        """Quantize with the saved ranges, leaving ``float_nodes`` in float."""
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        tensorrt = self.target == Target.TENSORRT
        if not tensorrt and "Relu" in self.op_types and float_nodes:
            float_nodes = [*float_nodes, *_relus_beside(onnx.load(str(self.pre_path)), set(float_nodes))]
        extra = {"ActivationSymmetric": self.symmetric, "WeightSymmetric": True, "QuantizeBias": not tensorrt}
        op_types, nodes = list(self.op_types), None
        if tensorrt:
            extra["OpTypesToExcludeOutputQuantization"] = [*WEIGHTED_OPS, "Add"]
            if self.residual_adds:  # Q/DQ on residual Add inputs too, but on no other Add
                op_types, nodes = [*op_types, "Add"], [*self.weighted_nodes, *self.residual_adds]
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(self.pre_path), str(self.scratch / "int8.onnx"), None, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=op_types, nodes_to_quantize=nodes, per_channel=self.per_channel,
                activation_type=QuantType.QInt8 if self.symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8, reduce_range=self.reduce_range, nodes_to_exclude=list(float_nodes),
                calibrate_method=calibration_method(self.method), extra_options=extra,
                calibration_cache_path=str(self.ranges_path),
            )
        quantized = onnx.load(str(self.scratch / "int8.onnx"))
        # Strong typing runs whatever is not Q/DQ in the ONNX's own type: cast it to FP16 as
        # NVIDIA's ModelOpt does, keeping float32 I/O and the fragile ops in FP32.
        return to_fp16(quantized, FRAGILE_FP16_OPS) if self.fp16_remainder else quantized

    def record(self, config: QuantConfig, float_nodes: tuple[str, ...], sensitivity: SensitivityReport | None,
               calibration: CalibrationRecord) -> QuantRecord:
        return QuantRecord(
            target=self.target, op_types=self.op_types, per_channel=self.per_channel,
            weights="int8 symmetric" + (", 7-bit range" if self.reduce_range else ""),
            activations="int8 symmetric" if self.symmetric else "uint8 asymmetric", method=config.method,
            percentile=config.percentile, float_nodes=float_nodes, exclude_modules=config.exclude_modules,
            high_precision=HighPrecision.FP16 if self.fp16_remainder else HighPrecision.FP32,
            auto_excluded=sensitivity.auto_excluded if sensitivity else (), residual_adds=len(self.residual_adds),
            calibration=calibration, **self._isa_fields())

    def _isa_fields(self) -> dict:
        """cpu target: the CPU class it was gated on, and whether its accuracy holds on every class."""
        if self.target != Target.CPU:
            return {}
        return {"isa_class": isa_class(), "portable": self.reduce_range}

    def gate_runtimes(self) -> tuple[str, ...]:
        """cpu target: every CPU runtime installed runs the artifact and must pass the gate (they differ:
        ONNX Runtime and OpenVINO lost 9.5 and 10.7 points with 8-bit weights on AVX2); tensorrt: ONNX Runtime."""
        if self.target == Target.CPU and importlib.util.find_spec("openvino") is not None:
            return ("onnxruntime", "openvino")
        return ("onnxruntime",)

    def notes(self) -> tuple[str, ...]:
        remainder = "FP16" if self.fp16_remainder else "FP32"
        if self.target != Target.TENSORRT:
            return (f"Unquantized parts run in {remainder}.",)
        return (f"Unquantized parts run in {remainder} (TensorRT's strong typing keeps the ONNX's types).",
                "Built for TensorRT: on a CPU it runs, but its FP16 parts and symmetric Q/DQ are slow there.")


def _relus_beside(model: onnx.ModelProto, names: set[str]) -> list[str]:
    """The Relu nodes whose producer or one of whose consumers is in ``names``."""
    producer = {output: node.name for node in model.graph.node for output in node.output}
    consumers: dict[str, set[str]] = {}
    for node in model.graph.node:
        for tensor in node.input:
            consumers.setdefault(tensor, set()).add(node.name)
    return [node.name for node in model.graph.node if node.op_type == "Relu"
            and (producer.get(node.input[0]) in names or consumers.get(node.output[0], set()) & names)]


def _qdq_plan(model: onnx.ModelProto, config: QuantConfig) -> _QdqPlan:
    target = config.target or Target.TENSORRT
    fp16_remainder = target == Target.TENSORRT and config.high_precision == HighPrecision.FP16
    if fp16_remainder and opset_of(model) < MIN_FP16_QDQ_OPSET:
        raise BadInputError(
            f"an FP16 remainder needs Q/DQ with FP16 scales (opset >= {MIN_FP16_QDQ_OPSET}); this model is opset "
            f"{opset_of(model)}: re-export with --opset 20 or pass --high-precision fp32"
        )
    tensorrt = target == Target.TENSORRT
    weighted = tuple(op for op in WEIGHTED_OPS if op not in config.exclude_ops)
    op_types = weighted + (() if tensorrt else tuple(op for op in CPU_DATA_OPS if op not in config.exclude_ops))
    groups = module_groups(model, weighted)
    adds = tuple(residual_adds(model, groups)) if tensorrt and "Add" not in config.exclude_ops else ()
    return _QdqPlan(
        target=target, symmetric=tensorrt or config.cpu_activations == CpuActivations.S8,
        reduce_range=not tensorrt and (config.isa == IsaTarget.PORTABLE or not full_range_int8()),
        per_channel=config.per_channel, fp16_remainder=fp16_remainder,
        method=config.method, op_types=op_types,
        residual_adds=adds, weighted_nodes=tuple(node.name for node in model.graph.node if node.op_type in weighted),
        groups=groups,
    )
