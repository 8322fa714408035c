"""INT8 for OpenVINO: NNCF's post-training quantization of the OpenVINO model, written as IR.

What a CPU user would otherwise do by hand (``nncf.quantize`` on the OpenVINO model), with what
segdeploy adds: the calibration images chosen and written down as for every INT8 artifact, the
gate on held-out images run on OpenVINO, and the metadata (recipe, calibration, accuracy,
``isa_class``/``portable``) inside the IR. NNCF places FakeQuantize nodes where OpenVINO's CPU
plugin fuses them (pooling, concatenation and element-wise inputs too), which is why its IR runs
faster on OpenVINO than a QDQ ONNX made for ONNX Runtime (benchmarks/nncf_compare.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path

from segdeploy import __version__
from segdeploy.artifact_meta import attach_openvino_metadata, read_metadata
from segdeploy.data.calibration_set import write_calibration_set
from segdeploy.errors import BadInputError, CheckFailedError, require
from segdeploy.export.openvino_ir import check_ir_output, write_ir
from segdeploy.isa import full_range_int8, isa_class
from segdeploy.metadata import ArtifactMeta, Precision
from segdeploy.module_paths import nodes_in_modules
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.accuracy import compare_models, held_out_images
from segdeploy.quantize.calibration import (
    calibration_batches,
    calibration_set_path,
    peak_rss_mb,
    resolve_calibration,
)
from segdeploy.quantize.config import (
    BiasCorrection,
    CalibrationRecord,
    IsaTarget,
    QuantConfig,
    QuantRecord,
    QuantReport,
    Target,
)
from segdeploy.quantize.finish import refuse_quantized


def quantize_openvino(onnx_path: str | os.PathLike, out: str | os.PathLike, calib: str,
                      config: QuantConfig = QuantConfig(target=Target.OPENVINO)) -> QuantReport:
    """Quantize a segdeploy fp32 ONNX with NNCF into an OpenVINO IR at ``out`` (.xml + .bin), gated on OpenVINO.

    NNCF picks its preset from the model: symmetric activations for CNNs, ``ModelType.TRANSFORMER`` (mixed
    preset, SmoothQuant) for graphs with MatMuls, whose MatMuls stay float on CPUs without VNNI/AMX (no int8
    GEMM kernel that pays there). ``config.isa`` portable gives every layer 7-bit weights
    (NNCF's overflow fix on all layers), so CPUs without VNNI compute what VNNI CPUs do.
    """
    ov, nncf = require("openvino", "openvino"), require("nncf", "nncf")
    started, out = time.perf_counter(), Path(out)
    _check_request(out, config)
    model = load_onnx(onnx_path)
    meta = read_metadata(model, str(onnx_path))
    refuse_quantized(model, meta, str(onnx_path))
    calibration = resolve_calibration(calib, config.num_images, config.seed, config.select, config.data_root)
    held_out = held_out_images(config.gate, meta, calibration)
    recipe = _recipe(model, config)
    float_model = ov.Core().read_model(str(onnx_path))
    quantized = _nncf_quantize(nncf, float_model, calibration.files, meta, recipe, model, config)
    record = QuantRecord(
        target=Target.OPENVINO, per_channel=True, weights="int8 symmetric, " + recipe["weight_bits"],
        activations=recipe["activations"], float_nodes=recipe["ignored"], exclude_modules=config.exclude_modules,
        calibration=CalibrationRecord(len(calibration.files), calibration.set.digest, calibration.set.source,
                                      calibration_set_path(out).name, round(peak_rss_mb(), 1)),
        isa_class=isa_class(), portable=recipe["portable"], quantizer=f"nncf {nncf.__version__}",
        recipe={key: str(value) for key, value in recipe.items() if key not in ("ignored", "portable")})
    report = _gate_and_write(ov, quantized, out, model, meta, config, record, held_out, started)
    write_calibration_set(calibration.set, calibration_set_path(out))
    return report


def _check_request(out: Path, config: QuantConfig) -> None:
    check_ir_output(out)
    unsupported = [flag for flag, used in (("--sensitivity/--auto-exclude", config.sensitivity or config.auto_exclude),
                                           ("--exclude-ops", config.exclude_ops),
                                           ("--no-per-channel", not config.per_channel)) if used]
    if unsupported:
        raise BadInputError(f"{', '.join(unsupported)} apply to ONNX targets (cpu, tensorrt), not --target openvino; "
                            "keep layers in float with --exclude-nodes or --exclude-modules")


def _recipe(model, config: QuantConfig) -> dict:
    """NNCF's settings for this model and ``config`` (recorded in the metadata as they were used)."""
    transformer = any(node.op_type in ("MatMul", "Gemm") for node in model.graph.node)
    portable = config.isa == IsaTarget.PORTABLE or not full_range_int8()
    # Without VNNI/AMX, OpenVINO's int8 FullyConnected (jit_gemm) ran no faster than its f32 one and the
    # activations' zero points added Subtracts: swin_seg_nano INT8 was slower than fp32 on x86-avx2, with only
    # its convolutions in int8 1.16x faster (benchmarks/nncf_compare.py). Accuracy is unaffected either way.
    matmuls = "none" if not transformer else "int8" if full_range_int8() else \
        f"float (no int8 GEMM that pays on {isa_class()})"
    ignored = tuple(sorted(set(config.exclude_nodes) | set(nodes_in_modules(model, config.exclude_modules)
                                                           if config.exclude_modules else ())))
    return {"model_type": "transformer" if transformer else "cnn",
            "preset": "mixed" if transformer else "performance",
            "activations": "uint8 asymmetric" if transformer else "int8 symmetric",
            "weight_bits": "7-bit range" if portable else "8-bit range (7-bit on the first layer)",
            "overflow_fix": "enable" if portable else "first_layer_only",
            "bias_correction": config.bias_correction.value, "portable": portable, "ignored": ignored,
            "matmuls": matmuls}


def _nncf_quantize(nncf, float_model, files, meta: ArtifactMeta, recipe: dict, onnx_model, config: QuantConfig):
    """``nncf.quantize`` on the calibration images, pre-processed as every segdeploy runtime does."""
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    batches = list(calibration_batches(files, meta))
    known = {node.name for node in onnx_model.graph.node}
    if missing := [name for name in recipe["ignored"] if name not in known]:
        raise BadInputError(f"--exclude-nodes names nodes this model does not have: {', '.join(missing[:5])}")
    nncf.set_log_level(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return nncf.quantize(
            float_model, nncf.Dataset(batches), subset_size=len(batches), target_device=nncf.TargetDevice.CPU,
            preset=nncf.QuantizationPreset(recipe["preset"]),
            model_type=nncf.ModelType.TRANSFORMER if recipe["model_type"] == "transformer" else None,
            fast_bias_correction=config.bias_correction == BiasCorrection.FAST,
            ignored_scope=nncf.IgnoredScope(names=list(recipe["ignored"]),
                                            types=["MatMul"] if recipe["matmuls"].startswith("float") else [],
                                            validate=False),
            advanced_parameters=AdvancedQuantizationParameters(overflow_fix=OverflowFix(recipe["overflow_fix"])))


def _gate_and_write(ov, quantized, out: Path, float_onnx, meta: ArtifactMeta, config: QuantConfig,
                    record: QuantRecord, held_out, started: float) -> QuantReport:
    """Run the gate on OpenVINO (the only runtime an IR has); write the IR with its metadata only if it passes."""
    with tempfile.TemporaryDirectory(prefix="segdeploy-nncf.") as scratch:
        candidate = Path(scratch) / "model.xml"
        ov.save_model(quantized, str(candidate), compress_to_fp16=False)
        description, samples = held_out
        accuracy = compare_models(float_onnx.SerializeToString(), candidate, meta, config.gate, description, samples,
                                  ("openvino",))
    out_meta = meta.replace(precision=Precision.INT8, created_by=f"segdeploy {__version__}")
    out_meta = out_meta.with_record("quantize", precision=Precision.INT8.value, **record.to_dict(),
                                    accuracy=dataclasses.asdict(accuracy))
    fake_quantize = Counter(op.get_type_name() for op in quantized.get_ordered_ops())["FakeQuantize"]
    result = QuantReport(
        output=None, precision=Precision.INT8, target=Target.OPENVINO, method=None,
        seconds=time.perf_counter() - started, calibration_images=record.calibration.images,
        calibration_digest=record.calibration.digest, calibration_peak_rss_mb=record.calibration.peak_rss_mb,
        size_bytes=0, quantized_ops={"FakeQuantize": fake_quantize}, accuracy=accuracy,
        notes=(f"Quantized by {record.quantizer} ({record.recipe['model_type']}, {record.recipe['preset']} preset, "
               f"{record.recipe['bias_correction']} bias correction); runs on OpenVINO only.",),
        float_nodes=record.float_nodes)
    if not accuracy.passed:
        raise CheckFailedError(f"accuracy gate failed: {accuracy.gate}; nothing written", result)
    size = write_ir(attach_openvino_metadata(quantized, out_meta), out, compress_fp16=False)
    return dataclasses.replace(result, output=str(out), size_bytes=size)
