"""Read and write segdeploy metadata in ONNX ``metadata_props`` (torch-free)."""

from __future__ import annotations

import os

import onnx

from segdeploy.errors import BadInputError
from segdeploy.fileio import require_file
from segdeploy.metadata import ONNX_METADATA_KEY, ArtifactMeta


def attach_metadata(model: onnx.ModelProto, meta: ArtifactMeta) -> onnx.ModelProto:
    """Set (replace) the segdeploy entry in ``model.metadata_props``; returns ``model``."""
    kept = [prop for prop in model.metadata_props if prop.key != ONNX_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key=ONNX_METADATA_KEY, value=meta.to_json())
    return model


def read_metadata(model: onnx.ModelProto, origin: str = "model") -> ArtifactMeta:
    """The segdeploy metadata of ``model``; BadInputError if absent or invalid."""
    for prop in model.metadata_props:
        if prop.key == ONNX_METADATA_KEY:
            return ArtifactMeta.from_json(prop.value)
    raise BadInputError(
        f"{origin} has no segdeploy metadata; export it with 'segdeploy export' "
        "or pass the preprocessing options (--input-size, --mean, --std) explicitly"
    )


def load_onnx(path: str | os.PathLike, load_weights: bool = True) -> onnx.ModelProto:
    """Load an ONNX file; a file that is not ONNX is BadInputError."""
    path = require_file(path, "ONNX model")
    try:
        return onnx.load(str(path), load_external_data=load_weights)
    except Exception as exc:  # onnx raises DecodeError, ValueError, OSError ...
        raise BadInputError(f"{path} is not a readable ONNX model ({type(exc).__name__})") from exc


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset the model imports (0 if none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def has_fp16_qdq(model: onnx.ModelProto) -> bool:
    """True if a Quantize/DequantizeLinear has an FP16 scale (INT8 with an FP16 remainder)."""
    fp16 = {init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT16}
    return any(
        node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in fp16 for node in model.graph.node
    )
