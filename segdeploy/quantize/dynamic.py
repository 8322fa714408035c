"""Dynamic INT8: weights quantized ahead of time, activations at run time, MatMul/Gemm only.

ONNX Runtime's CPU provider cannot run the ConvInteger a dynamic Conv would become, and
TensorRT cannot use dynamic quantization at all, so this is a CPU precision for models
with linear layers (Swin-Seg), not for conv-only U-Nets.

Weights are uint8, not int8: x86 CPUs without VNNI multiply u8 activations by s8 weights
with ``vpmaddubsw``, which saturates at int16, so u8 x s8 ``MatMulInteger`` loses accuracy
there; u8 x u8 takes a non-saturating path on every x86 CPU, so one artifact is right
wherever it runs. swin_seg_nano_camvid on an AVX2 EPYC (``benchmarks/dynamic_int8_weights.py``,
QUANTIZATION.md): pixel agreement with eager 0.987 with s8 weights, 0.999 with u8, at the
same latency within this machine's noise (60.2 vs 62.7 ms; fp32 64.6 ms).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import onnx

from segdeploy.artifact_meta import read_metadata
from segdeploy.errors import BadInputError, CheckFailedError, require
from segdeploy.metadata import Precision
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.config import QuantConfig, QuantRecord, QuantReport, Target
from segdeploy.quantize.finish import finish, refuse_quantized

DYNAMIC_OPS = ("MatMul", "Gemm")


def quantize_dynamic(
    onnx_path: str | os.PathLike, out: str | os.PathLike, config: QuantConfig = QuantConfig()
) -> QuantReport:
    """Quantize MatMul/Gemm weights to INT8; exit 1 (CheckFailedError) when there are none."""
    require("onnxruntime", "cpu")
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    if config.target == Target.TENSORRT:
        raise BadInputError("int8-dynamic cannot target TensorRT (it has no dynamic quantization); "
                            "use --precision int8 with --calib, or --target cpu")
    started = time.perf_counter()
    model = load_onnx(onnx_path)
    meta = read_metadata(model, str(onnx_path))
    refuse_quantized(model, meta, str(onnx_path))
    linear = sum(node.op_type in DYNAMIC_OPS for node in model.graph.node)
    if not linear:
        raise CheckFailedError(f"{meta.arch} has no MatMul/Gemm: dynamic INT8 has nothing to quantize "
                               "(conv-only model); use --precision int8 with --calib")
    with tempfile.TemporaryDirectory(prefix="segdeploy-dyn.") as scratch:
        source, target = Path(scratch) / "in.onnx", Path(scratch) / "out.onnx"
        onnx.save(model, source)
        ort_quantize_dynamic(source, target, op_types_to_quantize=list(DYNAMIC_OPS), per_channel=config.per_channel,
                             weight_type=QuantType.QUInt8, nodes_to_exclude=list(config.exclude_nodes))
        quantized = onnx.load(target)
    record = QuantRecord(target=Target.CPU, op_types=DYNAMIC_OPS, per_channel=config.per_channel,
                         weights="uint8 asymmetric", linear_nodes=linear, float_nodes=tuple(config.exclude_nodes))
    return finish(quantized, Path(out), model, meta, precision=Precision.INT8_DYNAMIC, gate=config.gate,
                  record=record, started=started)
