"""Small ONNX graph utilities used after third-party graph rewrites."""

from __future__ import annotations

import onnx


def topologically_sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    """Reorder nodes so each comes after the producers of its inputs (converters append casts at the end)."""
    graph = model.graph
    available = {value.name for value in graph.input} | {init.name for init in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [node for node in pending if all(name in available for name in node.input)]
        if not ready:
            raise ValueError("graph has a cycle or an input nothing produces")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [node for node in pending if node not in ready]
    del graph.node[:]
    graph.node.extend(ordered)
    return model
