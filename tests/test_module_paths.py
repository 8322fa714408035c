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


def test_model_without_module_paths_is_refused(unet_export):
    model = onnx.load(unet_export[2].output)
    for node in model.graph.node:
        del node.metadata_props[:]
    with pytest.raises(BadInputError, match="re-export"):
        nodes_in_modules(model, ("stem",))
