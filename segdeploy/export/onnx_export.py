"""Checkpoint -> ONNX with the dynamo exporter, onnxslim, checks, metadata and verification."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
import time
import warnings

import onnx
import torch
from torch import nn

from segdeploy import __version__
from segdeploy.artifact_meta import attach_metadata
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.preprocess import graph_pixels
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError, CheckFailedError, SegdeployError, UsageError
from segdeploy.export.config import (
    SECOND_VERIFY_SIZE,
    ExportConfig,
    ExportReport,
    VerificationReport,
)
from segdeploy.export.verify import compare_logits, compare_masks
from segdeploy.export.wrappers import MAX_MASK_CLASSES, DeployGraph
from segdeploy.fileio import atomic_output, sha256_bytes
from segdeploy.metadata import ArtifactMeta, OutputKind, Precision, TensorIO
from segdeploy.models.checkpoint import load_model
from segdeploy.module_paths import attach_module_paths, torch_module_paths
from segdeploy.onnx_graph import opset_of

VERIFY_SEED = 20250101


def export_onnx(
    model_or_source: nn.Module | str | os.PathLike,
    out: str | os.PathLike,
    config: ExportConfig = ExportConfig(),
    meta: ArtifactMeta | None = None,
) -> ExportReport:
    """Export a model to a verified ONNX file at ``out``.

    ``model_or_source`` is an ``nn.Module`` (then ``meta`` is required), a checkpoint path
    or a preset name. Verification failure raises CheckFailedError carrying the report and
    writes nothing.
    """
    model, meta = _resolve(model_or_source, meta)
    _validate(config, meta)
    input_size = config.input_size or tuple(meta.preprocess.eval_size)
    # A mask is argmax of logits at the input resolution: below it (output stride, fixed size) the graph
    # upsamples first, and then its output is at the input resolution.
    upsample = config.with_argmax and meta.io.below_input_resolution
    tensor_io = TensorIO(
        output_name="mask" if config.with_argmax else "logits",
        input_dtype="uint8" if config.fuse_normalize else "float32",
        input_layout=config.input_layout,
        output=OutputKind.MASK if config.with_argmax else OutputKind.LOGITS,
        output_stride=1 if upsample else meta.io.output_stride,
        output_size=None if upsample else meta.io.output_size,
    )
    graph = DeployGraph(
        model, meta.preprocess, config.fuse_normalize, config.input_layout, config.with_argmax, upsample
    ).eval()
    started = time.perf_counter()
    proto = _trace_to_onnx(graph, tensor_io, input_size, config, meta.preprocess.divisor)
    export_seconds = time.perf_counter() - started
    verification = _verify(graph, proto, tensor_io, input_size, config, meta) if config.verify else None
    out_meta = meta.replace(io=tensor_io, precision=Precision.FP32, created_by=f"segdeploy {__version__}")
    if not config.dynamic:  # a static graph takes only the size it was traced at: that is its eval size
        out_meta = out_meta.replace(preprocess=dataclasses.replace(meta.preprocess, eval_size=tuple(input_size)))
    opset = opset_of(proto)  # what was written: the exporter may settle on another opset than asked for
    out_meta = out_meta.with_record(
        "export", opset=opset, dynamic=config.dynamic, input_size=list(input_size),
        torch=str(torch.__version__), onnx=onnx.__version__,
        verification=verification.to_dict() if verification else None,
    )
    data = attach_metadata(proto, out_meta).SerializeToString()
    report = ExportReport(
        output=None, meta=out_meta, input_size=input_size, opset=opset,
        dynamic=config.dynamic, export_seconds=export_seconds, size_bytes=len(data),
        sha256=sha256_bytes(data), verification=verification,
    )
    if verification is not None and not verification.passed:
        raise CheckFailedError("ONNX output does not match eager PyTorch; nothing written", report)
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
    return dataclasses.replace(report, output=str(out))


def _resolve(
    model_or_source: nn.Module | str | os.PathLike, meta: ArtifactMeta | None
) -> tuple[nn.Module, ArtifactMeta]:
    if isinstance(model_or_source, nn.Module):
        if meta is None:
            raise UsageError("export_onnx needs meta= (an ArtifactMeta) when given an nn.Module")
        return model_or_source.eval(), meta
    model, loaded_meta = load_model(model_or_source)
    return model, meta or loaded_meta


def _validate(config: ExportConfig, meta: ArtifactMeta) -> None:
    if config.with_argmax and meta.num_classes > MAX_MASK_CLASSES:
        raise BadInputError(f"--with-argmax returns uint8 ids: at most {MAX_MASK_CLASSES} classes")


def _example_input(tensor_io: TensorIO, batch: int, size: tuple[int, int]) -> torch.Tensor:
    shape = (batch, *size, 3) if tensor_io.input_layout == "NHWC" else (batch, 3, *size)
    if tensor_io.input_dtype == "uint8":
        return torch.zeros(shape, dtype=torch.uint8)
    return torch.zeros(shape, dtype=torch.float32)


def trace_size(input_size: tuple[int, int], divisor: int, dynamic: bool) -> tuple[int, int]:
    """The example size to trace at: for dynamic exports at least two ``divisor`` blocks per side.

    torch.export specialises on sizes that are 1 (a single Swin window in a stage, like a
    batch of 1), which would fail or pin a dynamic export traced at a small size. Tracing is
    symbolic, so the larger size costs nothing; verification still runs at ``input_size``.
    """
    if not dynamic:
        return input_size
    return tuple(max(side, 2 * divisor) for side in input_size)


def _trace_to_onnx(
    graph: DeployGraph, tensor_io: TensorIO, input_size: tuple[int, int], config: ExportConfig, divisor: int
) -> onnx.ModelProto:
    # Batch 2 in the example: torch.export specialises dimensions of size 1.
    example = _example_input(tensor_io, 2 if config.dynamic else 1, trace_size(input_size, divisor, config.dynamic))
    dynamic_shapes = None
    if config.dynamic:
        h_axis, w_axis = (1, 2) if tensor_io.input_layout == "NHWC" else (2, 3)
        dynamic_shapes = {"images": {0: "batch", h_axis: "height", w_axis: "width"}}
    log = io.StringIO()
    try:
        with _quiet(config.verbose, log):
            program = torch.onnx.export(
                graph, (example,), dynamo=True, dynamic_shapes=dynamic_shapes,
                input_names=[tensor_io.input_name], output_names=[tensor_io.output_name],
                opset_version=config.opset, verbose=False,
            )
            proto = program.model_proto
            module_paths = torch_module_paths(proto)
            if config.slim:
                import onnxslim

                proto = onnxslim.slim(proto)
            attach_module_paths(proto, module_paths)
    except SegdeployError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckFailedError(f"torch.onnx export failed: {first[:300]} (use --debug for details)") from exc
    if config.dynamic:
        _name_output_dims(proto, tensor_io)
    try:
        onnx.checker.check_model(proto)
        return onnx.shape_inference.infer_shapes(proto)
    except Exception as exc:
        raise CheckFailedError(f"exported graph fails onnx.checker: {exc}") from exc


def _name_output_dims(proto: onnx.ModelProto, tensor_io: TensorIO) -> None:
    """Name the output's dynamic dims like the input's (the exporter writes sympy expressions).

    segdeploy's models crop their padding, so output batch/height/width equal the input's; an output below
    the input resolution (a stride, a fixed size) shares only the batch.
    """
    names = ["batch"] if tensor_io.below_input_resolution else ["batch", "height", "width"]
    if tensor_io.output == OutputKind.LOGITS:
        names.insert(1, None)  # classes: a fixed size
    for dim, name in zip(proto.graph.output[0].type.tensor_type.shape.dim, names):
        if name is not None:
            dim.dim_param = name


@contextlib.contextmanager
def _quiet(verbose: bool, sink: io.StringIO):
    """Silence the exporter's progress prints and warnings unless verbose."""
    if verbose:
        yield
        return
    logger = logging.getLogger("torch.onnx")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(previous)


def verification_shapes(
    input_size: tuple[int, int], dynamic: bool
) -> list[tuple[int, tuple[int, int]]]:
    """(batch, (H, W)) pairs to verify: the export size, plus batch 2 at 100x130 when dynamic."""
    shapes = [(1, input_size)]
    if dynamic:
        shapes.append((2, SECOND_VERIFY_SIZE))
    return shapes


def _verify(
    graph: DeployGraph, proto: onnx.ModelProto, tensor_io: TensorIO, input_size: tuple[int, int],
    config: ExportConfig, meta: ArtifactMeta,
) -> VerificationReport:
    started = time.perf_counter()
    cases = []
    with OnnxRuntimeBackend(proto.SerializeToString()) as backend:
        for index, (batch, size) in enumerate(verification_shapes(input_size, config.dynamic)):
            images, _ = make_scenes(batch, *size, seed=VERIFY_SEED + index)
            graph_input = graph_pixels(images, meta.preprocess, tensor_io)
            with torch.no_grad():
                reference = graph.logits(torch.from_numpy(graph_input)).numpy()
            actual = backend.infer(graph_input)
            if config.with_argmax:
                cases.append(compare_masks(actual, reference, config.min_agreement, config.margin))
            else:
                cases.append(compare_logits(
                    actual, reference, config.atol, config.rtol, config.min_agreement, config.margin
                ))
    return VerificationReport(
        tuple(cases), config.atol, config.rtol, config.min_agreement, config.margin,
        time.perf_counter() - started,
    )
