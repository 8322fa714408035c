import onnx
import pytest

from segdeploy.errors import BadInputError
from segdeploy.module_paths import group_of, module_groups, module_of, nodes_in_modules


@pytest.mark.parametrize("path, group", [
    ("down.1.3", "down.1"), ("stem.0", "stem"), ("head", "head"), ("up.2", "up"),
    ("encoder.stages.0.blocks.1.attn.qkv", "encoder.stages.0.blocks.1"), ("encoder.stages.0.blocks.1.mlp.0",
     "encoder.stages.0.blocks.1"), ("decoder.lateral.2.0", "decoder.lateral.2"), ("encoder.patch_embed",
                                                                                  "encoder.patch_embed"),
])
def test_group_of(path, group):
    assert group_of(path) == group


def test_export_keeps_module_paths_through_slimming(unet_export):
    model = onnx.load(unet_export[2].output)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert convs and all(module_of(node) for node in convs)
    groups = module_groups(model, ("Conv", "ConvTranspose"))
    assert "stem" in groups and "head" in groups and any(name.startswith("down.") for name in groups)


def test_nodes_in_modules_matches_submodules_and_refuses_unknown(unet_export):
    model = onnx.load(unet_export[2].output)
    stem = nodes_in_modules(model, ("stem",))
    assert stem and all(module_of(node).startswith("stem") for node in model.graph.node if node.name in stem)
    with pytest.raises(BadInputError, match="matches no node; module groups here: .*stem"):
        nodes_in_modules(model, ("no.such.module",))


def test_graphs_without_module_paths_are_grouped_by_layer_regions(unet_export):
    model = onnx.load(unet_export[2].output)
    for node in model.graph.node:
        del node.metadata_props[:]
    weighted = [node.name for node in model.graph.node if node.op_type in ("Conv", "ConvTranspose")]
    groups = module_groups(model, ("Conv", "ConvTranspose"))
    assert list(groups) == weighted and all(groups[name][0] == name for name in weighted)
    first = [node.name for node in model.graph.node].index(weighted[0])
    assert sum(map(len, groups.values())) == len(model.graph.node) - first  # every node after the first conv, once
    assert nodes_in_modules(model, (weighted[1],)) == sorted(groups[weighted[1]])
    with pytest.raises(BadInputError, match="'stem' is no layer region of this graph: it has no module paths"):
        nodes_in_modules(model, ("stem",))
