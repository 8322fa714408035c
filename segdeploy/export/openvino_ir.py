"""ONNX -> OpenVINO IR (.xml + .bin), metadata in ``rt_info``, verified against ONNX Runtime.

OpenVINO's ``save_model`` compresses weights to FP16 by default; segdeploy keeps FP32
weights unless ``compress_fp16`` is asked for, so the IR computes what the ONNX does.
Torch-free.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segdeploy.artifact_meta import attach_openvino_metadata, read_metadata
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.backends.openvino_backend import OpenVinoBackend
from segdeploy.data.preprocess import model_output, prepare
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError, CheckFailedError, require
from segdeploy.export.config import DEFAULT_ATOL, DEFAULT_MARGIN, DEFAULT_MIN_AGREEMENT, DEFAULT_RTOL, VerificationCase
from segdeploy.export.verify import compare_logits, compare_masks
from segdeploy.fileio import publish
from segdeploy.metadata import OutputKind
from segdeploy.onnx_graph import load_onnx

FP16_WEIGHT_ATOL = 1e-2  # FP16-compressed weights cannot meet the FP32 tolerance


@dataclass(frozen=True)
class OpenVinoConfig:
    compress_fp16: bool = False  # FP16 weights in the .bin (OpenVINO's own default is True)
    verify: bool = True


@dataclass(frozen=True)
class OpenVinoReport:
    output: str
    source: str
    size_bytes: int  # .xml + .bin
    compress_fp16: bool
    seconds: float
    verification: VerificationCase | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_openvino(onnx_path: str | os.PathLike, out: str | os.PathLike,
                    config: OpenVinoConfig = OpenVinoConfig()) -> OpenVinoReport:
    """Convert a segdeploy ONNX to IR at ``out`` (.xml; the .bin goes beside it), verified first."""
    ov = require("openvino", "openvino")
    started = time.perf_counter()
    out = Path(out)
    check_ir_output(out)
    meta = read_metadata(load_onnx(onnx_path, load_weights=False), str(onnx_path))
    # Core.read_model, not convert_model: convert_model splits its path argument at commas.
    model = ov.Core().read_model(str(onnx_path))
    record = meta.with_record("openvino", compress_fp16=config.compress_fp16, openvino=ov.__version__)
    attach_openvino_metadata(model, record)
    verification: list[VerificationCase] = []

    def verified(xml: Path) -> None:
        if not config.verify:
            return
        verification.append(_verify(onnx_path, xml, meta, config))
        if not verification[0].passed:
            raise CheckFailedError(f"the IR disagrees with the ONNX (agreement {verification[0].agreement:.4%}); "
                                   "nothing written")

    size = write_ir(model, out, config.compress_fp16, verified)
    return OpenVinoReport(str(out), str(onnx_path), size, config.compress_fp16, time.perf_counter() - started,
                          verification[0] if verification else None)


def check_ir_output(out: Path) -> None:
    """Refuse, before any work, an IR output that is not an .xml or whose folder does not exist."""
    if out.suffix != ".xml":
        raise BadInputError(f"an OpenVINO IR output must end in .xml, got {out.name}")
    if not out.parent.is_dir():
        raise BadInputError(f"cannot write {out}: folder {out.parent} does not exist")


def write_ir(model: Any, out: Path, compress_fp16: bool, check: Callable[[Path], None] | None = None) -> int:
    """Save the ``openvino.Model`` as ``out`` (.xml) and its .bin as one pair; returns their total size.

    Both files are written in a scratch folder beside ``out``, where ``check(xml)`` may refuse them by
    raising; then the .bin and the .xml (the entry point, last) are renamed into place. On any failure
    nothing is left behind and an existing ``out`` is untouched.
    """
    ov = require("openvino", "openvino")
    scratch = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
    try:
        ov.save_model(model, str(scratch / "model.xml"), compress_to_fp16=compress_fp16)
        if check is not None:
            check(scratch / "model.xml")
        size = sum(path.stat().st_size for path in scratch.iterdir())
        publish(scratch / "model.bin", out.with_suffix(".bin"))
        publish(scratch / "model.xml", out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return size


def _verify(onnx_path, xml: Path, meta, config: OpenVinoConfig) -> VerificationCase:
    """IR (f32 inference) vs ONNX Runtime on seeded synthetic scenes at the eval size (a batch of 2 when the
    graph's batch is dynamic, else 1)."""
    height, width = meta.preprocess.eval_size
    with OnnxRuntimeBackend(onnx_path) as reference, OpenVinoBackend(xml, precision="f32") as candidate:
        batch_dim = reference.input_spec.shape[0] if reference.input_spec.shape else None
        images, _ = make_scenes(batch_dim or 2, height, width, seed=11)
        batch = np.concatenate([prepare(image, meta.preprocess, meta.io)[0] for image in images])
        expected, actual = (model_output(backend.infer(batch), meta.io) for backend in (reference, candidate))
    if meta.io.output == OutputKind.MASK:
        return compare_masks(actual, np.eye(meta.num_classes, dtype=np.float32)[expected].transpose(0, 3, 1, 2),
                             DEFAULT_MIN_AGREEMENT, DEFAULT_MARGIN)
    atol = FP16_WEIGHT_ATOL if config.compress_fp16 else DEFAULT_ATOL
    return compare_logits(actual, expected, atol, DEFAULT_RTOL * (10 if config.compress_fp16 else 1),
                          DEFAULT_MIN_AGREEMENT if not config.compress_fp16 else 0.99, DEFAULT_MARGIN)


def export_model_to_openvino(model, meta, out: str | os.PathLike, export_config,
                             config: OpenVinoConfig = OpenVinoConfig()):
    """Checkpoint model -> verified ONNX beside ``out`` (same stem) -> verified IR; (ExportReport, OpenVinoReport)."""
    from segdeploy.export.onnx_export import export_onnx

    out = Path(out)
    onnx_report = export_onnx(model, out.with_suffix(".onnx"), export_config, meta)
    return onnx_report, export_openvino(out.with_suffix(".onnx"), out, config)
