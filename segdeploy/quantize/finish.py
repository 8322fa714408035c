"""What every quantization ends with: accuracy gate, metadata, atomic write."""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from pathlib import Path

import onnx

from segdeploy import __version__
from segdeploy.artifact_meta import attach_metadata
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.fileio import atomic_output
from segdeploy.metadata import ArtifactMeta, Precision
from segdeploy.quantize.accuracy import compare_models, held_out_images
from segdeploy.quantize.config import AccuracyGate, QuantRecord, QuantReport, SensitivityReport

QUANTIZED_OPS = ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger",
                 "ConvInteger", "QLinearConv", "QLinearMatMul")


def refuse_quantized(model: onnx.ModelProto, meta: ArtifactMeta, origin: str) -> None:
    """An already quantized model (by metadata or by its ops) is bad input."""
    ops = {node.op_type for node in model.graph.node}
    if meta.precision != Precision.FP32 or ops & set(QUANTIZED_OPS) or _has_fp16_weights(model):
        raise BadInputError(f"{origin} is already quantized ({meta.precision.value}); quantize the fp32 export")
    if meta.io.input_dtype != "float32":
        raise BadInputError(f"{origin} takes {meta.io.input_dtype} input (fused normalisation); "
                            "quantize an export without --fuse-normalize")


def _has_fp16_weights(model: onnx.ModelProto) -> bool:
    return any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    counts = Counter(node.op_type for node in model.graph.node)
    return {op: counts[op] for op in sorted(counts) if op in QUANTIZED_OPS or op == "Cast"}


def finish(
    quantized: onnx.ModelProto, out: Path, float_model: onnx.ModelProto, meta: ArtifactMeta, *,
    precision: Precision, gate: AccuracyGate, record: QuantRecord, started: float,
    held_out: tuple[str, list] | None = None, notes: tuple[str, ...] = (),
    sensitivity: SensitivityReport | None = None, runtimes: tuple[str, ...] = ("onnxruntime",),
) -> QuantReport:
    """Check the graph, evaluate against the float model, attach metadata, write ``out`` only if the gate passes.

    ``held_out`` is ``held_out_images(...)``'s (description, samples); None reads them here (no calibration set).
    ``record`` goes into the metadata's history and gives the report its recipe fields.
    """
    try:
        onnx.checker.check_model(quantized)
    except onnx.checker.ValidationError as exc:
        raise CheckFailedError(f"the quantized graph is invalid: {str(exc).splitlines()[0]}") from exc
    description, samples = held_out if held_out is not None else held_out_images(gate, meta)
    accuracy = compare_models(float_model.SerializeToString(), quantized.SerializeToString(), meta, gate,
                              description, samples, runtimes)
    out_meta = meta.replace(precision=precision, created_by=f"segdeploy {__version__}")
    out_meta = out_meta.with_record("quantize", precision=precision.value, **record.to_dict(),
                                    accuracy=dataclasses.asdict(accuracy))
    data = attach_metadata(quantized, out_meta).SerializeToString()
    calibration = record.calibration
    result = QuantReport(
        output=None, precision=precision, target=record.target, method=record.method,
        seconds=time.perf_counter() - started, calibration_images=calibration.images if calibration else 0,
        calibration_digest=calibration.digest if calibration else None,
        calibration_peak_rss_mb=calibration.peak_rss_mb if calibration else None, size_bytes=len(data),
        quantized_ops=op_counts(quantized), accuracy=accuracy, notes=notes, sensitivity=sensitivity,
        float_nodes=record.float_nodes,
    )
    if not accuracy.passed:
        raise CheckFailedError(f"accuracy gate failed: {accuracy.gate}; nothing written", result)
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
    return dataclasses.replace(result, output=str(out))
