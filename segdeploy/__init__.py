"""segdeploy: semantic segmentation from PyTorch to fast, verified deployment artifacts.

``import segdeploy`` stays light: torch, onnxruntime, openvino and tensorrt are imported
only when a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved on first attribute access. One stage function per
# command; none is named like a subpackage (``segdeploy.quantize`` is a package: a lazily exported
# function of that name would be shadowed once the package is imported).
_LAZY_EXPORTS = {
    "load_model": "segdeploy.models.checkpoint",
    "save_checkpoint": "segdeploy.models.checkpoint",
    "create_model": "segdeploy.models.registry",
    "list_models": "segdeploy.models.registry",
    "export_model": "segdeploy.export.stage",
    "ExportFormat": "segdeploy.export.stage",
    "export_onnx": "segdeploy.export.onnx_export",
    "ExportConfig": "segdeploy.export.config",
    "ExportReport": "segdeploy.export.config",
    "quantize_onnx": "segdeploy.quantize.stage",
    "QuantConfig": "segdeploy.quantize.config",
    "AccuracyGate": "segdeploy.quantize.config",
    "train_model": "segdeploy.train.trainer",
    "TrainConfig": "segdeploy.train.config",
    "build_engine": "segdeploy.trt.builder",
    "BuildConfig": "segdeploy.trt.builder",
    "bench_artifacts": "segdeploy.bench.runner",
    "BenchConfig": "segdeploy.bench.runner",
    "predict_files": "segdeploy.runtime.predict",
    "PredictConfig": "segdeploy.runtime.predict",
    "ArtifactMeta": "segdeploy.metadata",
    "Precision": "segdeploy.metadata",
    "SegdeployError": "segdeploy.errors",
    "Segmenter": "segdeploy.runtime.segmenter",
    "SegmenterPool": "segdeploy.runtime.segmenter",
}

__all__ = ["__version__", *sorted(_LAZY_EXPORTS)]


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'segdeploy' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return __all__
