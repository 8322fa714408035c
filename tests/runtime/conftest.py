"""One tiny U-Net as every artifact type: checkpoint, dynamic ONNX, OpenVINO IR."""

import dataclasses

import pytest

from segdeploy.metadata import ResizePolicy


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, trained_checkpoint):
    """{"torch": .pt, "onnxruntime": .onnx, "openvino": .xml} of one trained unet_tiny, run at native size
    (KEEP policy) so that tiles and whole images are comparable."""
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.export.openvino_ir import export_openvino
    from segdeploy.models.checkpoint import load_model, save_checkpoint

    folder = tmp_path_factory.mktemp("artifacts")
    model, meta = load_model(trained_checkpoint("unet_tiny"))
    pre = dataclasses.replace(meta.preprocess, resize_policy=ResizePolicy.KEEP, eval_size=(64, 80))
    meta = meta.replace(preprocess=pre)
    save_checkpoint(model, folder / "m.pt", meta)
    export_onnx(str(folder / "m.pt"), folder / "m.onnx", ExportConfig())
    export_openvino(folder / "m.onnx", folder / "m.xml")
    return {"torch": folder / "m.pt", "onnxruntime": folder / "m.onnx", "openvino": folder / "m.xml"}


@pytest.fixture(scope="session")
def scene_images():
    from segdeploy.data.synthetic import make_scenes

    images, _ = make_scenes(3, 64, 80, seed=5)
    return list(images)
