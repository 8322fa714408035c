"""FP16 ONNX with float32 I/O (ONNX Runtime's float16 converter), fragile ops kept in FP32."""

from __future__ import annotations

import os
import time
from pathlib import Path

import onnx

from segdeploy.artifact_meta import read_metadata
from segdeploy.errors import require
from segdeploy.metadata import Precision
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.config import Fp16Config, QuantRecord, QuantReport, Target
from segdeploy.quantize.finish import finish, refuse_quantized
from segdeploy.quantize.graph import topologically_sorted


def to_fp16(model: onnx.ModelProto, keep_fp32_ops: tuple[str, ...]) -> onnx.ModelProto:
    """FP16 weights and compute, float32 graph I/O, ``keep_fp32_ops`` left in FP32 (Q/DQ scales become FP16)."""
    require("onnxruntime", "cpu")
    from onnxruntime.transformers.float16 import convert_float_to_float16

    converted = convert_float_to_float16(model, keep_io_types=True, op_block_list=list(keep_fp32_ops))
    return topologically_sorted(converted)


def convert_fp16(
    onnx_path: str | os.PathLike, out: str | os.PathLike, config: Fp16Config = Fp16Config()
) -> QuantReport:
    """Convert weights and compute to FP16, keeping graph I/O float32 and ``keep_fp32_ops`` in FP32.

    Resize, Softmax and normalisation reductions stay FP32: their FP16 versions lose range or
    precision (softmax over 49 window tokens, mean/variance of LayerNorm), which costs accuracy
    for no speed on CPUs and little on GPUs.
    """
    started = time.perf_counter()
    model = load_onnx(onnx_path)
    meta = read_metadata(model, str(onnx_path))
    refuse_quantized(model, meta, str(onnx_path))
    converted = to_fp16(model, config.keep_fp32_ops)
    record = QuantRecord(target=Target.TENSORRT, keep_fp32_ops=tuple(config.keep_fp32_ops))
    return finish(converted, Path(out), model, meta, precision=Precision.FP16, gate=config.gate, record=record,
                  started=started,
                  notes=("FP16 runs on ONNX Runtime CPU by casting; it is meant for GPUs and TensorRT.",))
