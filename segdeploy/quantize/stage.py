"""``quantize_onnx``: the quantization stage as one call, whatever the precision."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from segdeploy.errors import BadInputError
from segdeploy.metadata import Precision
from segdeploy.quantize.config import Fp16Config, QuantConfig, QuantReport, Target

Progress = Callable[[int, int], None]


def default_quantized_path(model: str | os.PathLike, config: QuantConfig) -> Path:
    """``<stem>_<precision>[_<target>].onnx`` beside ``model`` (``.xml`` for the openvino target)."""
    model = Path(model)
    suffix = config.precision.value.replace("-", "_") + (f"_{config.target.value}" if config.target else "")
    return model.with_name(f"{model.stem}_{suffix}" + (".xml" if config.target == Target.OPENVINO else ".onnx"))


def quantize_onnx(model: str | os.PathLike, out: str | os.PathLike | None, config: QuantConfig,
                  on_image: Progress | None = None, on_group: Progress | None = None) -> QuantReport:
    """Quantize an fp32 segdeploy ONNX to ``config.precision``, gated; ``out`` None: the default path.

    int8 calibrates on ``config.calib`` (required: never a silent random calibration); ``config.target``
    openvino writes an OpenVINO IR quantized by NNCF (``out`` ends in .xml);
    ``on_image``/``on_group`` hear calibration and sensitivity progress as (done, total).
    """
    out = Path(out) if out is not None else default_quantized_path(model, config)
    if config.target == Target.OPENVINO and config.precision != Precision.INT8:
        raise BadInputError("--target openvino makes INT8 IR (NNCF); for fp16 on OpenVINO run the fp32 model with "
                            "--backend openvino, or convert it with 'segdeploy export MODEL.onnx --format openvino'")
    if config.precision == Precision.FP16:
        from segdeploy.quantize.fp16 import convert_fp16

        return convert_fp16(model, out, Fp16Config(gate=config.gate))
    if config.precision == Precision.INT8_DYNAMIC:
        from segdeploy.quantize.dynamic import quantize_dynamic

        return quantize_dynamic(model, out, config)
    if config.precision == Precision.FP32:
        raise BadInputError("--precision fp32 is what export writes; choose fp16, int8 or int8-dynamic")
    if not config.calib:
        raise BadInputError("--precision int8 needs --calib (a calibration set file, dataset or image folder): "
                            "segdeploy never calibrates on random data")
    if config.target == Target.OPENVINO:
        from segdeploy.quantize.openvino_int8 import quantize_openvino

        return quantize_openvino(model, out, config.calib, config)
    from segdeploy.quantize.int8 import quantize_int8

    return quantize_int8(model, out, config.calib, config, on_image=on_image, on_group=on_group)
