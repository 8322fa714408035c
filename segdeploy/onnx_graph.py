"""Loading ONNX files and the few graph facts several stages ask (torch-free)."""

from __future__ import annotations

import os

import onnx

from segdeploy.errors import BadInputError, library_reason
from segdeploy.fileio import require_file
from segdeploy.sniff import describe


def load_onnx(path: str | os.PathLike, load_weights: bool = True) -> onnx.ModelProto:
    """Load an ONNX file; a file that is not ONNX is BadInputError."""
    path = require_file(path, "ONNX model")
    try:
        return onnx.load(str(path), load_external_data=load_weights)
    except MemoryError:
        raise
    except Exception as exc:  # protobuf's DecodeError, onnx's ValueError/OSError for external data ...
        looks = describe(path)
        if looks != "an ONNX model":
            raise BadInputError(f"{path} is not an ONNX model: it is {looks}") from exc
        raise BadInputError(f"{path} is a damaged ONNX model (truncated or corrupt; protobuf cannot parse it: "
                            f"{library_reason(exc, 80)})") from exc


def opset_of(model: onnx.ModelProto) -> int:
    """The default-domain opset the model imports (0 if none)."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def has_fp16_qdq(model: onnx.ModelProto) -> bool:
    """True if a Quantize/DequantizeLinear has an FP16 scale (INT8 with an FP16 remainder)."""
    fp16 = {init.name for init in model.graph.initializer if init.data_type == onnx.TensorProto.FLOAT16}
    return any(
        node.op_type in ("QuantizeLinear", "DequantizeLinear") and node.input[1] in fp16 for node in model.graph.node
    )
