"""PyTorch module paths on ONNX nodes, so parts of a model can be named stably.

The dynamo exporter writes each node's module scopes into its metadata
(``pkg.torch.onnx.name_scopes``); onnxslim drops node metadata, so export reads the paths
first and writes them back, compactly, as ``segdeploy.module`` on the slimmed nodes of the
same name. Generated node names change between exports; module paths such as ``down.1`` or
``encoder.stages.0.blocks.1`` do not. Torch-free.
"""

from __future__ import annotations

import ast

import onnx

from segdeploy.errors import BadInputError

MODULE_KEY = "segdeploy.module"
TORCH_SCOPES_KEY = "pkg.torch.onnx.name_scopes"
WRAPPER_PREFIX = "model"  # DeployGraph holds the user's model as ``.model``


def torch_module_paths(model: onnx.ModelProto) -> dict[str, str]:
    """{node name: module path} from the exporter's scopes ('' for the top-level module)."""
    paths = {}
    for node in model.graph.node:
        scopes = next((prop.value for prop in node.metadata_props if prop.key == TORCH_SCOPES_KEY), None)
        if scopes is None:
            continue
        names = ast.literal_eval(scopes)  # e.g. ['', 'model', 'model.stem', 'model.stem.1', 'relu']
        modules = names[:-1]  # the last scope is the op itself
        path = modules[-1] if modules else ""
        if path == WRAPPER_PREFIX or path.startswith(WRAPPER_PREFIX + "."):
            path = path[len(WRAPPER_PREFIX) + 1:]
        paths[node.name] = path
    return paths


def attach_module_paths(model: onnx.ModelProto, paths: dict[str, str]) -> onnx.ModelProto:
    """Set ``segdeploy.module`` on every node of ``model`` named in ``paths``; returns ``model``."""
    for node in model.graph.node:
        if node.name in paths:
            kept = [prop for prop in node.metadata_props if prop.key != MODULE_KEY]
            del node.metadata_props[:]
            node.metadata_props.extend(kept)
            node.metadata_props.add(key=MODULE_KEY, value=paths[node.name])
    return model


# Ops that start a layer region in a graph without module paths (the weighted ops quantization targets).
REGION_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


def module_of(node: onnx.NodeProto) -> str | None:
    return next((prop.value for prop in node.metadata_props if prop.key == MODULE_KEY), None)


def nodes_in_modules(model: onnx.ModelProto, modules: tuple[str, ...]) -> list[str]:
    """Names of the nodes inside any of ``modules`` (a path or any of its submodules; in a graph without
    module paths, a layer region of ``layer_regions``). BadInputError if one matches no node."""
    paths = {node.name: module_of(node) for node in model.graph.node}
    if not any(paths.values()):
        regions = layer_regions(model)
        unknown = [module for module in modules if module not in regions]
        if unknown:
            raise BadInputError(f"{unknown[0]!r} is no layer region of this graph: it has no module paths (adopted, "
                                "or exported outside segdeploy), so --exclude-modules takes the regions named by the "
                                f"Conv/MatMul that starts each: {', '.join(list(regions)[:12])}")
        return sorted({name for module in modules for name in regions[module]})
    chosen = []
    for module in modules:
        matched = [name for name, path in paths.items() if path is not None and _inside(path, module)]
        if not matched:
            known = sorted({group_of(path) for path in paths.values() if path})
            raise BadInputError(f"module {module!r} matches no node; module groups here: {', '.join(known[:12])}")
        chosen.extend(matched)
    return sorted(set(chosen))


def layer_regions(model: onnx.ModelProto, op_types: tuple[str, ...] = REGION_OPS) -> dict[str, list[str]]:
    """The groups of a graph without module paths: one per node of ``op_types``, named by it, holding it and
    the nodes after it in graph (topological) order up to the next such node: the connected stretch from one
    Conv or MatMul to the next, with its activations, norms and joins. Nodes before the first are in none."""
    regions: dict[str, list[str]] = {}
    current = None
    for index, node in enumerate(model.graph.node):
        if node.op_type in op_types:
            current = node_label(node, index)
            regions[current] = []
        if current is not None:
            regions[current].append(node_label(node, index))
    return regions


def node_label(node: onnx.NodeProto, index: int) -> str:
    """A node's name, or for an unnamed one ``<op>_<index in the graph>`` (what ``name_unnamed_nodes`` gives it)."""
    return node.name or f"{node.op_type}_{index}"


def name_unnamed_nodes(model: onnx.ModelProto) -> None:
    """Give unnamed nodes their ``node_label``: exclusions and sensitivity address nodes by name. Tensor names,
    which the user's code may use, are never changed."""
    for index, node in enumerate(model.graph.node):
        node.name = node_label(node, index)


def _inside(path: str, module: str) -> bool:
    return path == module or path.startswith(module + ".")


def group_of(path: str) -> str:
    """The sensitivity group of a module path: a stage or block, not a single layer.

    The path up to its deepest numeric index that is not the leaf (``down.1.3`` -> ``down.1``,
    ``encoder.stages.0.blocks.1.attn.qkv`` -> ``encoder.stages.0.blocks.1``); a path whose
    only index is its leaf is grouped by its parent (``stem.0`` -> ``stem``); one without
    indices is its own group (``head``).
    """
    parts = path.split(".")
    inner = [i for i, part in enumerate(parts[:-1]) if part.isdigit()]
    if inner:
        return ".".join(parts[: inner[-1] + 1])
    if parts[-1].isdigit() and len(parts) > 1:
        return ".".join(parts[:-1])
    return path


def module_groups(model: onnx.ModelProto, op_types: tuple[str, ...]) -> dict[str, list[str]]:
    """{group: names of every node inside it}, one group per stage/block holding an op of ``op_types``.

    Groups come in graph order; a node belongs to a group when its module path is the group's
    path or a submodule of it (so a block's residual Adds belong to the block). A graph without
    module paths is grouped by ``layer_regions``.
    """
    if not any(module_of(node) for node in model.graph.node):
        return layer_regions(model, op_types)
    groups: dict[str, list[str]] = {}
    for node in model.graph.node:
        path = module_of(node)
        if node.op_type in op_types and path:
            groups.setdefault(group_of(path), [])
    for node in model.graph.node:
        path = module_of(node)
        group = next((g for g in groups if path is not None and _inside(path, g)), None)
        if group is not None:
            groups[group].append(node.name)
    return groups


def residual_adds(model: onnx.ModelProto, groups: dict[str, list[str]]) -> list[str]:
    """Adds of two computed tensors made by a block itself (not by a submodule): residual joins.

    Adds inside submodules (an attention bias, a mask) are left out on purpose.
    """
    constants = {init.name for init in model.graph.initializer}
    constants |= {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    return [node.name for node in model.graph.node
            if node.op_type == "Add" and module_of(node) in groups and not set(node.input) & constants]
