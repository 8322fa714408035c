"""Small foreign ONNX graphs, built with onnx.helper, for the adopt tests: no segdeploy metadata."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 11  # CamVid's


def stride_graph(path, stride=4, classes=CLASSES, dims=("n", 3, "h", "w"), aux=False, class_map=None,
                 second_input=False, uint8_nhwc=False, fixed_output=None, opset=17) -> None:
    """input -> [uint8 NHWC: cast/transpose/scale] -> stride x stride average pool (ceil) -> 1x1 conv to
    ``classes`` logits [-> ArgMax: class_map "nhw" or "n1hw"] [+ an auxiliary output] [-> Resize to a fixed size]."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.standard_normal((classes, 3, 1, 1)).astype(np.float32) * 4, "w"),
               numpy_helper.from_array(np.float32(1 / 255), "scale")]
    nodes, source = [], "input"
    if uint8_nhwc:
        nodes += [helper.make_node("Cast", ["input"], ["as_float"], to=TensorProto.FLOAT),
                  helper.make_node("Transpose", ["as_float"], ["nchw"], perm=[0, 3, 1, 2]),
                  helper.make_node("Mul", ["nchw", "scale"], ["scaled"])]
        source = "scaled"
    nodes += [helper.make_node("AveragePool", [source], ["pooled"], kernel_shape=[stride, stride],
                               strides=[stride, stride], ceil_mode=1),
              helper.make_node("Conv", ["pooled", "w"], ["logits"])]
    out_name, out_type, out_dims = "logits", TensorProto.FLOAT, ["n", classes, "oh", "ow"]
    if fixed_output:
        weights.append(numpy_helper.from_array(np.array(fixed_output, np.int64), "size"))
        nodes.append(helper.make_node("Resize", ["logits", "", "", "size"], ["fixed"], mode="linear", axes=[2, 3]))
        opset = max(opset, 18)  # Resize's axes
        out_name, out_dims = "fixed", ["n", classes, *fixed_output]
    if class_map:
        nodes.append(helper.make_node("ArgMax", [out_name], ["mask"], axis=1, keepdims=int(class_map == "n1hw")))
        out_name, out_type = "mask", TensorProto.INT64
        out_dims = ["n", 1, "oh", "ow"] if class_map == "n1hw" else ["n", "oh", "ow"]
    outputs = [helper.make_tensor_value_info(out_name, out_type, out_dims)]
    if aux:
        nodes.append(helper.make_node("Relu", ["logits"], ["aux"]))
        outputs.insert(0, helper.make_tensor_value_info("aux", TensorProto.FLOAT, ["n", classes, "oh", "ow"]))
    input_type = TensorProto.UINT8 if uint8_nhwc else TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("input", input_type, list(dims))]
    if second_input:
        inputs.append(helper.make_tensor_value_info("depth", TensorProto.FLOAT, ["n", 1, "h", "w"]))
    for index, node in enumerate(nodes):  # named, as exporters name them
        node.name = f"{node.op_type.lower()}_{index}"
    graph = helper.make_graph(nodes, "foreign", inputs, outputs, weights)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), str(path))
