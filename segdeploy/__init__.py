"""segdeploy: semantic segmentation from PyTorch to fast, verified deployment artifacts.

``import segdeploy`` stays light: torch, onnxruntime, openvino and tensorrt are imported
only when a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved on first attribute access.
_LAZY_EXPORTS = {
    "load_model": "segdeploy.models.checkpoint",
    "save_checkpoint": "segdeploy.models.checkpoint",
    "create_model": "segdeploy.models.registry",
    "list_models": "segdeploy.models.registry",
    "export_onnx": "segdeploy.export.onnx_export",
    "ExportConfig": "segdeploy.export.config",
    "ExportReport": "segdeploy.export.config",
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
