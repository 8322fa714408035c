"""Tiny models trained for a few steps on synthetic scenes, exported once per session."""

import pytest

from segdeploy.data.synthetic import write_synthetic_dataset


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("scenes"), {"train": 16, "val": 6}, size=(64, 80))


def _trained_export(tmp_path_factory, scenes, arch):
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.train.trainer import TrainConfig, train

    folder = tmp_path_factory.mktemp(arch)
    train(TrainConfig(data=str(scenes), arch=arch, output=str(folder / "m.pt"), input_size=(64, 80), epochs=2,
                      batch=4, lr=1e-2, seed=0, val_split=None))
    export_onnx(str(folder / "m.pt"), folder / "fp32.onnx", ExportConfig())
    return folder / "fp32.onnx"


@pytest.fixture(scope="session")
def unet_fp32(tmp_path_factory, scenes):
    return _trained_export(tmp_path_factory, scenes, "unet_tiny")


@pytest.fixture(scope="session")
def swin_fp32(tmp_path_factory, scenes):
    return _trained_export(tmp_path_factory, scenes, "swin_seg_tiny")
