"""``adopt_onnx``: segdeploy metadata for a foreign segmentation ONNX, after checking the graph can honour it.

What the metadata says is established by running the graph, not assumed: ONNX Runtime runs it on
seeded synthetic scenes at the eval size and, where H and W are dynamic, at a second size (and at
batch 2 where the batch is dynamic); the output's classes and its stride (``ceil(H / s)``) or
fixed size come from those runs. The user's graph keeps its tensor names; of several outputs only
the chosen one stays a graph output (segdeploy's runtimes read the first output). The adopted file
runs once more as the runtime will run it (its own metadata, post-processing) before it is published.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import onnx

from segdeploy.artifact_meta import ArtifactFormat, artifact_format, attach_metadata, read_metadata
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.preprocess import model_output, postprocess, prepare
from segdeploy.data.synthetic import make_scene
from segdeploy.errors import BadInputError
from segdeploy.export.adopt_config import LabelConfig
from segdeploy.fileio import atomic_output, require_file, sha256_file
from segdeploy.metadata import (
    ONNX_METADATA_KEY,
    ArtifactMeta,
    InputLayout,
    OutputKind,
    Preprocess,
    ResizePolicy,
    TensorIO,
    new_meta,
)
from segdeploy.module_paths import name_unnamed_nodes
from segdeploy.onnx_graph import load_onnx
from segdeploy.sizes import MAX_SIDE, format_hw

MAX_STRIDE = 64
INTEGER_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.UINT8, onnx.TensorProto.INT8,
                 onnx.TensorProto.UINT16, onnx.TensorProto.INT16}


@dataclass(frozen=True)
class AdoptConfig:
    labels: LabelConfig = field(default_factory=LabelConfig)
    output: str | None = None  # the graph output holding logits or class ids; None: the first
    force: bool = False  # replace segdeploy metadata the file already carries


@dataclass(frozen=True)
class AdoptReport:
    output: str
    meta: ArtifactMeta
    dynamic_batch: bool
    dynamic_size: bool
    probes: list[dict]  # {"input": [N, H, W], "output": shape} per run
    seconds: float

    def to_dict(self) -> dict:
        return {**asdict(self), "meta": self.meta.to_dict()}


def adopt_onnx(model_path: str | os.PathLike, out: str | os.PathLike, config: AdoptConfig = AdoptConfig()
               ) -> AdoptReport:
    """Write ``out``: the model at ``model_path`` with metadata its own runs confirmed (BadInputError otherwise)."""
    started = time.perf_counter()
    if artifact_format(out) != ArtifactFormat.ONNX:
        raise BadInputError(f"adopt writes an ONNX file; give -o NAME.onnx, not {Path(out).name}")
    model = _load(model_path, config.force)
    name_unnamed_nodes(model)  # the names layer regions give them
    output = _keep_one_output(model, config.output)
    kind = _output_kind(output)
    image = _image_input(model)
    input_format = _input_format(image)  # rank and channels checked before any dimension is read
    pre = config.labels.preprocess_for(_eval_size(image, config.labels.input_size))
    io = TensorIO(input_name=image.name, output_name=output.name, output=kind, **input_format)
    probes, dynamic_batch, dynamic_size = _probe(model.SerializeToString(), pre, io)
    channels = probes[0]["output"][1] if kind == OutputKind.LOGITS else None
    io = replace(io, **output_geometry(probes, output.name))
    names, palette = config.labels.labels(channels, f"output {output.name!r}")
    meta = new_meta("adopted", {"graph": Path(model_path).name}, len(names), class_names=names, palette=palette,
                    preprocess=pre, io=io, ignore_index=config.labels.ignore(),
                    # The reference later artifacts (quantized, IR) are compared with: the adopted fp32 model itself.
                    source={"path": str(out)})
    meta = meta.with_record("adopt", foreign={"path": str(model_path), "sha256": sha256_file(model_path)},
                            probes=probes, dynamic_batch=dynamic_batch, dynamic_size=dynamic_size)
    _write_checked(attach_metadata(model, meta), Path(out))
    return AdoptReport(str(out), meta, dynamic_batch, dynamic_size, probes, time.perf_counter() - started)


def _load(path: str | os.PathLike, force: bool) -> onnx.ModelProto:
    path = require_file(path, "ONNX model")
    header = load_onnx(path, load_weights=False)
    for tensor in header.graph.initializer:
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "?")
            if not (path.parent / location).is_file():
                raise BadInputError(f"{path.name} keeps its weights in the external file {location!r}, which is not "
                                    f"beside it; put that file next to {path.name}")
    if any(prop.key == ONNX_METADATA_KEY for prop in header.metadata_props) and not force:
        raise BadInputError(f"{path.name} already carries segdeploy metadata; use it as it is, or --force to "
                            "replace it")
    return load_onnx(path)


def _keep_one_output(model: onnx.ModelProto, name: str | None) -> onnx.ValueInfoProto:
    outputs = list(model.graph.output)
    names = ", ".join(repr(o.name) for o in outputs)
    chosen = outputs[0] if name is None else next((o for o in outputs if o.name == name), None)
    if chosen is None:
        raise BadInputError(f"the graph has no output {name!r}; its outputs are {names}")
    del model.graph.output[:]
    model.graph.output.append(chosen)
    return chosen


def _output_kind(output: onnx.ValueInfoProto) -> OutputKind:
    tensor = output.type.tensor_type
    rank = len(tensor.shape.dim) if tensor.HasField("shape") else None
    integer = tensor.elem_type in INTEGER_TYPES
    if rank == 4 and not integer:
        return OutputKind.LOGITS
    if integer and rank in (3, 4):
        return OutputKind.MASK
    shape = "unknown rank" if rank is None else f"rank {rank}"
    raise BadInputError(f"output {output.name!r} is {onnx.TensorProto.DataType.Name(tensor.elem_type).lower()} of "
                        f"{shape}; adopt takes logits (N, C, h, w) or class ids (N, h, w) / (N, 1, h, w)")


@dataclass(frozen=True)
class _Image:
    name: str
    elem_type: int
    dims: tuple[int | None, ...]


def _image_input(model: onnx.ModelProto) -> _Image:
    weights = {tensor.name for tensor in model.graph.initializer}
    inputs = [graph_input for graph_input in model.graph.input if graph_input.name not in weights]
    if len(inputs) != 1:
        listed = ", ".join(repr(i.name) for i in inputs) or "none"
        raise BadInputError(f"the graph has {len(inputs)} inputs ({listed}); adopt takes models with one image input")
    tensor = inputs[0].type.tensor_type
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in tensor.shape.dim)
    return _Image(inputs[0].name, tensor.elem_type, dims)


def _input_format(image: _Image) -> dict:
    """input_dtype and input_layout of a float NCHW or uint8 NCHW/NHWC image input."""
    shown = "x".join("?" if d is None else str(d) for d in image.dims)
    kind = onnx.TensorProto.DataType.Name(image.elem_type).lower()
    if len(image.dims) == 4 and image.elem_type == onnx.TensorProto.FLOAT and image.dims[1] in (3, None):
        return {"input_dtype": "float32", "input_layout": InputLayout.NCHW}
    if len(image.dims) == 4 and image.elem_type == onnx.TensorProto.UINT8:
        if image.dims[1] == 3:
            return {"input_dtype": "uint8", "input_layout": InputLayout.NCHW}
        if image.dims[3] == 3:
            return {"input_dtype": "uint8", "input_layout": InputLayout.NHWC}
    raise BadInputError(f"input {image.name!r} is {kind} {shown}; adopt takes float NCHW images with 3 channels, "
                        "or uint8 NCHW/NHWC for graphs that normalise themselves")


def _eval_size(image: _Image, given: tuple[int, int] | None) -> tuple[int, int]:
    layout_hw = (1, 2) if image.elem_type == onnx.TensorProto.UINT8 and image.dims[3] == 3 else (2, 3)
    height, width = (image.dims[axis] for axis in layout_hw)
    if height is not None and width is not None:
        if given is not None and tuple(given) != (height, width):
            raise BadInputError(f"input {image.name!r} is fixed at {format_hw((height, width))}; --input-size "
                                f"{format_hw(given)} contradicts it")
        return height, width
    if given is None:
        raise BadInputError(f"input {image.name!r} has dynamic height/width: give the eval size with --input-size HxW")
    return given


def _probe(model_bytes: bytes, pre: Preprocess, io: TensorIO) -> tuple[list[dict], bool, bool]:
    """Output shapes at the eval size, a second size and batch 2 (where dynamic); what is dynamic."""
    probes = []
    with OnnxRuntimeBackend(model_bytes) as backend:
        shape = backend.input_spec.shape or (None,) * 4
        hw_axes = (1, 2) if io.input_layout == InputLayout.NHWC else (2, 3)
        dynamic_batch, dynamic_size = shape[0] is None, any(shape[axis] is None for axis in hw_axes)
        first, second = probe_sizes(pre)
        sizes = [(1, first)]
        if dynamic_size:
            sizes.append((1, second))
        if dynamic_batch:
            sizes.append((2, pre.eval_size))
        for seed, (batch_size, size) in enumerate(sizes):
            image = make_scene(seed, *size)[0]
            batch, _ = prepare(image, replace(pre, eval_size=size, resize_policy=ResizePolicy.STRETCH), io)
            try:
                output = model_output(backend.infer(np.repeat(batch, batch_size, axis=0)), io)
            except BadInputError as exc:
                if seed == 0:
                    raise
                raise _not_really_dynamic(io.input_name, batch_size, size, pre.eval_size, exc) from exc
            _check_rank(output, io)
            probes.append({"input": [batch_size, *size], "output": list(output.shape)})
    return probes, dynamic_batch, dynamic_size


def _not_really_dynamic(name: str, batch_size: int, size: tuple[int, int], eval_size: tuple[int, int],
                        failure: BadInputError) -> BadInputError:
    """A graph that declares a dynamic batch or size but runs only at its export shape (sizes baked into its
    Reshapes, as legacy exporters do): say so, and how to fix its input instead."""
    what = "batch" if batch_size > 1 else "height/width"
    reason = str(failure).partition(": ")[2] or str(failure)
    return BadInputError(f"input {name!r} declares a dynamic {what} but the graph does not run at batch {batch_size}, "
                         f"{format_hw(size)} ({reason[:120]}); re-export it with working dynamic axes, or fix the "
                         f"input to 1x3x{format_hw(eval_size)} first "
                         "(python -m onnxruntime.tools.make_dynamic_shape_fixed)")


def probe_sizes(pre: Preprocess) -> tuple[tuple[int, int], tuple[int, int]]:
    """The eval size and one divisor step larger (capped at MAX_SIDE): where a model's output geometry is read."""
    return pre.eval_size, (min(MAX_SIDE, pre.eval_size[0] + pre.divisor), min(MAX_SIDE, pre.eval_size[1] + pre.divisor))


def _check_rank(output: np.ndarray, io: TensorIO) -> None:
    """What the graph returned, not what it declares: logits (N, C, h, w), class ids (N, h, w) or (N, 1, h, w)."""
    wanted = 4 if io.output == OutputKind.LOGITS else 3
    if output.ndim != wanted:
        what = "logits (N, C, h, w)" if wanted == 4 else "class ids (N, h, w) or (N, 1, h, w)"
        raise BadInputError(f"output {io.output_name!r} returned shape {'x'.join(map(str, output.shape))} when run; "
                            f"adopt takes {what}")


def output_geometry(probes: list[dict], name: str) -> dict:
    """output_stride (the one s with ceil(H / s) x ceil(W / s) at every probed size) or a fixed output_size."""
    pairs = [(tuple(p["input"][1:]), tuple(p["output"][-2:])) for p in probes]
    for probe in probes:
        if probe["output"][0] != probe["input"][0]:
            raise BadInputError(f"output {name!r} has batch {probe['output'][0]} for an input batch of "
                                f"{probe['input'][0]}")
    for stride in range(1, MAX_STRIDE + 1):
        if all(out == TensorIO(output_stride=stride).output_spatial(size) for size, out in pairs):
            return {"output_stride": stride, "output_size": None}
    if len({out for _, out in pairs}) == 1:
        return {"output_stride": 1, "output_size": pairs[0][1]}
    seen = "; ".join(f"{format_hw(i)} -> {format_hw(o)}" for i, o in pairs)
    raise BadInputError(f"output {name!r} follows no stride s (ceil(H/s) x ceil(W/s), s <= {MAX_STRIDE}) and no "
                        f"fixed size: {seen}")


def _write_checked(model: onnx.ModelProto, out: Path) -> None:
    """Run the finished model once as the runtime will (its metadata's preprocessing, the output geometry
    check, post-processing at an odd image size), then write it atomically."""
    meta = read_metadata(model)
    image = make_scene(7, 97, 131)[0]
    batch, placement = prepare(image, meta.preprocess, meta.io)
    with OnnxRuntimeBackend(model.SerializeToString()) as backend:
        output = model_output(backend.infer(batch), meta.io)
    expected = meta.output_shape(batch.shape)
    if output.shape != expected:
        raise BadInputError(f"output {meta.io.output_name!r} is {'x'.join(map(str, output.shape))} for a "
                            f"{format_hw(placement.input_size)} input, not {'x'.join(map(str, expected))} as its "
                            "probes showed")
    mask = postprocess(output[0], placement)
    assert mask.shape == image.shape[:2]  # post-processing's own contract
    with atomic_output(out) as tmp:
        onnx.save(model, str(tmp))
