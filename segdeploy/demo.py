"""The built-in default job behind ``segdeploy demo`` (no arguments, no external data).

For now: export ``unet_small`` and ``swin_seg_nano`` (11 classes, random weights) to
verified ONNX in one folder. The benchmark issue grows this into the whole pipeline.
"""

from __future__ import annotations

import os
from pathlib import Path

from segdeploy.export.config import ExportConfig, ExportReport

DEMO_MODELS = ("unet_small", "swin_seg_nano")
DEMO_CLASSES = 11


def run_demo(out_dir: str | os.PathLike, models: tuple[str, ...] = DEMO_MODELS) -> list[ExportReport]:
    """Export each preset to ``out_dir/<name>.onnx`` with verification; returns the reports."""
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.models.checkpoint import load_model

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reports = []
    for name in models:
        model, meta = load_model(name, num_classes=DEMO_CLASSES)
        reports.append(export_onnx(model, out_dir / f"{name}.onnx", ExportConfig(), meta))
    return reports
