"""Tiny models trained for a few steps on synthetic scenes, exported once per session."""

import pytest


def _trained_export(trained_checkpoint, arch):
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx

    checkpoint = trained_checkpoint(arch)
    export_onnx(str(checkpoint), checkpoint.with_name("fp32.onnx"), ExportConfig())
    return checkpoint.with_name("fp32.onnx")


@pytest.fixture(scope="session")
def unet_fp32(trained_checkpoint):
    return _trained_export(trained_checkpoint, "unet_tiny")


@pytest.fixture(scope="session")
def swin_fp32(swin_export):
    """The trained swin_seg_tiny's ONNX: the export tests' (one Swin export per session)."""
    return swin_export[2].output
