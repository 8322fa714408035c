"""Shared fixtures and capability-based skipping for the markers gpu, tensorrt, data, slow."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from pathlib import Path

import pytest

CAMVID = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "camvid"


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    reasons = {
        "gpu": None if _has_cuda() else "needs an NVIDIA GPU with CUDA",
        "tensorrt": None if importlib.util.find_spec("tensorrt") and _has_cuda() else "needs TensorRT and a GPU",
        "data": None if (CAMVID / "train").is_dir() else f"needs CamVid at {CAMVID}",
        "slow": None if os.environ.get("SEGDEPLOY_SKIP_SLOW", "") in ("", "0") else "SEGDEPLOY_SKIP_SLOW is set",
    }
    for item in items:
        for marker, reason in reasons.items():
            # get_closest_marker, not keywords: a parameter id such as "tensorrt" is a keyword too.
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(autouse=True)
def _strict_fp32_on_gpu(request, monkeypatch):
    """gpu tests compare float32 CUDA results with the CPU's: no TF32 (torch's default for cuDNN
    convolutions, a 10-bit mantissa) and deterministic cuDNN algorithms there. Benchmarks keep torch's
    defaults and say so."""
    if request.node.get_closest_marker("gpu"):
        import torch

        monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
        monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)


@pytest.fixture(scope="session")
def camvid_root() -> Path:
    return CAMVID


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("exports")


def _export(export_dir: Path, arch: str, name: str, eval_size=None, **config):
    import dataclasses

    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.models.checkpoint import load_model

    model, meta = load_model(arch, num_classes=5)
    if eval_size:
        meta = meta.replace(preprocess=dataclasses.replace(meta.preprocess, eval_size=eval_size))
    report = export_onnx(model, export_dir / f"{name}.onnx", ExportConfig(**config), meta)
    return model, meta, report


@pytest.fixture(scope="session")
def unet_export(export_dir):
    """(model, meta, report) of unet_tiny exported once per session with dynamic shapes."""
    return _export(export_dir, "unet_tiny", "unet_tiny")


@pytest.fixture(scope="session")
def swin_export(export_dir, trained_checkpoint):
    """(model, meta, report) of swin_seg_tiny trained on the synthetic scenes at 64x80, its eval size (every stage
    has one window there, the hard case to trace), exported once per session: a Swin export takes ~80 s on
    2 cores, so the export tests and the quantize tests (``swin_fp32``) share this one."""
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.models.checkpoint import load_model

    model, meta = load_model(trained_checkpoint("swin_seg_tiny"))
    assert meta.preprocess.eval_size == (64, 80), "the trainer's input size is the export's eval size"
    return model, meta, export_onnx(model, export_dir / "swin_seg_tiny.onnx", ExportConfig(), meta)


@pytest.fixture(scope="session")
def unet_argmax_export(export_dir, unet_export):
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx

    model, meta, _ = unet_export
    return export_onnx(model, export_dir / "unet_argmax.onnx", ExportConfig(with_argmax=True), meta)


@pytest.fixture(scope="session")
def export_variant(export_dir, unet_export):
    """Factory: export the session's unet_tiny with extra ExportConfig fields (cached)."""
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx

    model, meta, _ = unet_export
    cache = {}

    def make(**config):
        key = tuple(sorted(config.items()))
        if key not in cache:
            name = "unet_" + "_".join(f"{k}-{v}" for k, v in key)
            cache[key] = export_onnx(model, export_dir / f"{name}.onnx", ExportConfig(**config), meta)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def scenes(tmp_path_factory):
    """A synthetic dataset (train 32, val 6 images of 64x80) in the generic layout."""
    from segdeploy.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("scenes"), {"train": 32, "val": 6}, size=(64, 80))


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory, scenes):
    """``trained_checkpoint(arch)``: a tiny model trained on the synthetic scenes (cached per arch).

    15 epochs reach ~0.8 pixel accuracy and predict most classes (11-17 s); with fewer the
    model predicts one class everywhere and every agreement test passes trivially.
    """
    cache = {}

    def make(arch: str) -> Path:
        if arch not in cache:
            from segdeploy.train.trainer import TrainConfig, train_model

            folder = tmp_path_factory.mktemp(arch)
            train_model(TrainConfig(data=str(scenes), arch=arch, output=str(folder / "m.pt"), input_size=(64, 80),
                              epochs=15, batch=4, lr=1e-2, seed=0, val_split=None))
            cache[arch] = folder / "m.pt"
        return cache[arch]

    return make


class _LazyArtifacts(dict):
    """{"torch": .pt, "onnxruntime": .onnx, "openvino": .xml}, each made on first access: a machine
    without OpenVINO (the lent GPU machine) still gets the checkpoint and the ONNX."""

    def __init__(self, makers: dict) -> None:
        super().__init__()
        self._makers = makers

    def __missing__(self, kind: str) -> Path:
        self[kind] = self._makers[kind]()
        return self[kind]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory, trained_checkpoint):
    """The artifacts of one trained unet_tiny, run at native size (KEEP policy) so that tiles and whole
    images are comparable."""
    from segdeploy.metadata import ResizePolicy
    from segdeploy.models.checkpoint import load_model, save_checkpoint

    folder = tmp_path_factory.mktemp("artifacts")

    def checkpoint() -> Path:
        model, meta = load_model(trained_checkpoint("unet_tiny"))
        pre = dataclasses.replace(meta.preprocess, resize_policy=ResizePolicy.KEEP, eval_size=(64, 80))
        return save_checkpoint(model, folder / "m.pt", meta.replace(preprocess=pre))

    def onnx() -> Path:
        from segdeploy.export.config import ExportConfig
        from segdeploy.export.onnx_export import export_onnx

        export_onnx(str(made["torch"]), folder / "m.onnx", ExportConfig())
        return folder / "m.onnx"

    def openvino() -> Path:
        from segdeploy.export.openvino_ir import export_openvino

        export_openvino(made["onnxruntime"], folder / "m.xml")
        return folder / "m.xml"

    made = _LazyArtifacts({"torch": checkpoint, "onnxruntime": onnx, "openvino": openvino})
    return made


@pytest.fixture(scope="session")
def scene_images():
    from segdeploy.data.synthetic import make_scenes

    images, _ = make_scenes(3, 64, 80, seed=5)
    return list(images)
