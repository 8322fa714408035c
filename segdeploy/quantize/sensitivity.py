"""Per-layer sensitivity: which module groups cost the most agreement when quantized.

Calibration runs once; each trial re-quantizes with the same ranges, leaving one group (a
U-Net stage, a Swin block) in float, and measures the agreement mIoU with the float model on
a few held-out images. Groups are ranked by the agreement they recover over the fully
quantized model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import onnx

from segdeploy.metadata import ArtifactMeta
from segdeploy.metrics import Agreement
from segdeploy.quantize.accuracy import predict_masks
from segdeploy.quantize.config import SensitivityReport, SensitivityRow


def rank_groups(float_model: bytes, build: Callable[[list[str]], onnx.ModelProto], meta: ArtifactMeta,
                images: list[np.ndarray], groups: dict[str, list[str]], excluded: list[str],
                on_group: Callable[[int, int], None] | None = None) -> SensitivityReport:
    """Rank ``groups`` by agreement recovered when each alone stays float; ``build(nodes)`` quantizes."""
    started = time.perf_counter()
    reference = predict_masks(float_model, meta, images)

    def agreement(nodes_in_float: list[str]) -> float:
        masks = predict_masks(build(nodes_in_float).SerializeToString(), meta, images)
        agreement = Agreement(meta.num_classes)
        for mask, expected in zip(masks, reference):
            agreement.update(mask, expected)
        return agreement.miou

    baseline = agreement(excluded)
    rows = []
    for done, (group, nodes) in enumerate(groups.items(), start=1):
        score = agreement(sorted(set(excluded) | set(nodes)))
        rows.append(SensitivityRow(group, len(nodes), score, score - baseline))
        if on_group:
            on_group(done, len(groups))
    rows.sort(key=lambda row: row.recovered, reverse=True)
    return SensitivityReport(len(images), baseline, tuple(rows), time.perf_counter() - started)
