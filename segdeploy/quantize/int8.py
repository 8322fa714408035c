"""Static INT8 as QDQ, calibrated on real images, for TensorRT or for CPUs.

``tensorrt``: signed int8, symmetric activations and weights (zero point 0), per-channel
weights, no bias Q/DQ (TensorRT rejects int32 bias Q/DQ), Q/DQ only on the inputs of
Conv/ConvTranspose/MatMul/Gemm (outputs stay float, so the final head output is not
quantized). ``cpu``: uint8 asymmetric activations (or int8 symmetric with
``cpu_activations="s8"``) and int8 per-channel weights, what ONNX Runtime's x86 kernels
run fastest.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import onnx

from segdeploy.data.manifest import write_manifest
from segdeploy.errors import BadInputError, require
from segdeploy.metadata import Precision
from segdeploy.onnx_meta import load_onnx, opset_of, read_metadata
from segdeploy.quantize.calibration import calibration_method, collect_ranges, resolve_calibration
from segdeploy.quantize.config import FRAGILE_FP16_OPS, MIN_FP16_QDQ_OPSET, QuantConfig, QuantReport, Target
from segdeploy.quantize.finish import finish, refuse_quantized
from segdeploy.quantize.fp16 import to_fp16

WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def manifest_path(out: Path) -> Path:
    """Where the calibration set used for ``out`` is written: ``<out stem>.calib.json``."""
    return out.with_name(out.stem + ".calib.json")


def quantize_int8(onnx_path: str | os.PathLike, out: str | os.PathLike, calib: str,
                  config: QuantConfig = QuantConfig(), on_image=None) -> QuantReport:
    """Calibrate on ``calib`` (manifest, dataset or image folder) and write a QDQ INT8 model."""
    require("onnxruntime", "cpu")
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static
    from onnxruntime.quantization.calibrate import save_tensors_data

    target = config.target or Target.TENSORRT
    if target not in (Target.TENSORRT, Target.CPU):
        raise BadInputError(f"unknown target {target!r}; choose tensorrt or cpu")
    if config.high_precision not in ("fp16", "fp32"):
        raise BadInputError(f"--high-precision must be fp16 or fp32, got {config.high_precision!r}")
    fp16_remainder = target == Target.TENSORRT and config.high_precision == "fp16"
    started = time.perf_counter()
    out = Path(out)
    model = load_onnx(onnx_path)
    meta = read_metadata(model, str(onnx_path))
    refuse_quantized(model, meta, str(onnx_path))
    if fp16_remainder and opset_of(model) < MIN_FP16_QDQ_OPSET:
        raise BadInputError(
            f"an FP16 remainder needs Q/DQ with FP16 scales (opset >= {MIN_FP16_QDQ_OPSET}); this model is opset "
            f"{opset_of(model)}: re-export with --opset 20 or pass --high-precision fp32"
        )
    calibration = resolve_calibration(calib, config.num_images, config.seed, config.select, config.data_root)
    symmetric = target == Target.TENSORRT or config.cpu_activations == "s8"
    op_types = [op for op in WEIGHTED_OPS if op not in config.exclude_ops]
    with tempfile.TemporaryDirectory(prefix="segdeploy-int8.") as scratch:
        scratch = Path(scratch)
        # Symbolic shape inference cannot follow the exporter's dynamic shapes; ONNX's own
        # shape inference and ORT's graph optimisation (Conv+BN folding) still run.
        quant_pre_process(str(onnx_path), str(scratch / "pre.onnx"), skip_symbolic_shape=True)
        ranges, peak_rss = collect_ranges(scratch / "pre.onnx", calibration.files, meta, config.method,
                                          config.percentile, symmetric, on_image)
        save_tensors_data(ranges, scratch / "ranges.json")
        extra = {"ActivationSymmetric": symmetric, "WeightSymmetric": True, "QuantizeBias": target != Target.TENSORRT}
        if target == Target.TENSORRT:
            extra["OpTypesToExcludeOutputQuantization"] = list(WEIGHTED_OPS)
        activation = QuantType.QInt8 if symmetric else QuantType.QUInt8
        method = calibration_method(config.method)
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(
                str(scratch / "pre.onnx"), str(scratch / "int8.onnx"), None, quant_format=QuantFormat.QDQ,
                op_types_to_quantize=op_types, per_channel=config.per_channel, activation_type=activation,
                weight_type=QuantType.QInt8, nodes_to_exclude=list(config.exclude_nodes), calibrate_method=method,
                extra_options=extra, calibration_cache_path=str(scratch / "ranges.json"),
            )
        quantized = onnx.load(str(scratch / "int8.onnx"))
    if fp16_remainder:
        # Strong typing runs whatever is not Q/DQ in the ONNX's own type: cast it to FP16 as
        # NVIDIA's ModelOpt does, keeping float32 I/O and the fragile ops in FP32.
        quantized = to_fp16(quantized, FRAGILE_FP16_OPS)
    record = {
        "target": target, "method": config.method, "percentile": config.percentile,
        "activations": "int8 symmetric" if symmetric else "uint8 asymmetric", "weights": "int8 symmetric",
        "per_channel": config.per_channel, "op_types": op_types, "exclude_nodes": list(config.exclude_nodes),
        "high_precision": "fp16" if fp16_remainder else "fp32",
        "calibration": {"images": len(calibration.files), "digest": calibration.manifest.digest,
                        "source": calibration.manifest.source, "manifest": manifest_path(out).name},
    }
    remainder = "FP16" if fp16_remainder else "FP32"
    notes = (f"Unquantized parts run in {remainder} (strong typing keeps the ONNX's types).",)
    if target == Target.TENSORRT:
        notes += ("Built for TensorRT: on a CPU it runs, but its FP16 parts and symmetric Q/DQ are slow there.",)
    report = finish(quantized, out, model, meta, precision=Precision.INT8, gate=config.gate, record=record,
                    started=started, calibration_root=calibration.dataset_root, calibration_files=calibration.files,
                    target=target, method=config.method, calibration_images=len(calibration.files),
                    calibration_digest=calibration.manifest.digest, calibration_peak_rss_mb=round(peak_rss, 1),
                    notes=notes)
    write_manifest(calibration.manifest, manifest_path(out))
    return report
