"""Accuracy of one artifact on ground truth and against a reference, segmentation-native.

Per artifact: mIoU, per-class IoU and pixel accuracy on ground truth; against the
reference's masks: pixel agreement, agreement mIoU (the reference's mask taken as truth),
per-class IoU change vs the reference on ground truth, the class pairs that flip most
(reference class -> artifact class), and the images where the two agree least.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from segdeploy.bench.results import AccuracySummary, ClassFlip, WorstImage
from segdeploy.metrics import Agreement, ConfusionMatrix

TOP_FLIPS = 5
WORST_IMAGES = 5


@dataclass
class AccuracyTracker:
    num_classes: int
    ignore_index: int | None
    truth: ConfusionMatrix = field(init=False)
    versus_reference: Agreement = field(init=False)  # rows: reference class, columns: this artifact's
    image_agreement: list[tuple[str, float]] = field(default_factory=list)  # (image path, agreement)
    labelled: bool = True

    def __post_init__(self) -> None:
        self.truth = ConfusionMatrix(self.num_classes, self.ignore_index)
        self.versus_reference = Agreement(self.num_classes, self.ignore_index)

    def update(self, name: str, mask: np.ndarray, reference: np.ndarray | None, labels: np.ndarray | None) -> None:
        """Add one image: ``labels`` None means no ground truth; ``reference`` None means no reference."""
        if labels is None:
            self.labelled = False
        else:
            self.truth.update(mask, labels)
        if reference is None:
            return
        self.image_agreement.append((name, self.versus_reference.update(mask, reference, labels)))

    def summary(self, class_names: tuple[str, ...], reference: AccuracyTracker | None) -> AccuracySummary:
        """What was measured (fractions 0-1; ``delta_miou`` in points)."""
        fields: dict = {}
        if self.labelled and self.truth.matrix.sum():
            iou = self.truth.iou()
            fields.update(miou=self.truth.miou(), pixel_acc=self.truth.pixel_accuracy(),
                          per_class_iou=_by_name(iou, class_names))
            if reference is not None and reference.labelled and reference.truth.matrix.sum():
                fields.update(delta_miou=(self.truth.miou() - reference.truth.miou()) * 100,
                              per_class_iou_change=_by_name(iou - reference.truth.iou(), class_names))
        if self.image_agreement:
            worst = sorted(self.image_agreement, key=lambda item: item[1])[:WORST_IMAGES]
            fields.update(miou_vs_reference=self.versus_reference.miou,
                          agreement_vs_reference=self.versus_reference.pixel,
                          top_flips=_top_flips(self.versus_reference.matrix.matrix, class_names),
                          worst_images=tuple(WorstImage(Path(name).name, name, value) for name, value in worst))
        return AccuracySummary(**fields)


def _by_name(values: np.ndarray, class_names: tuple[str, ...]) -> dict[str, float | None]:
    return {name: (None if np.isnan(value) else float(value)) for name, value in zip(class_names, values)}


def _top_flips(matrix: np.ndarray, class_names: tuple[str, ...]) -> tuple[ClassFlip, ...]:
    """The largest off-diagonal cells: pixels the reference calls A and the artifact calls B."""
    off = matrix.astype(np.float64).copy()
    np.fill_diagonal(off, 0)
    flips = []
    for index in np.argsort(off, axis=None)[::-1][:TOP_FLIPS]:
        source, target = divmod(int(index), matrix.shape[0])
        if off[source, target] == 0:
            break
        flips.append(ClassFlip(class_names[source], class_names[target], int(off[source, target]),
                               float(off[source, target] / max(matrix[source].sum(), 1))))
    return tuple(flips)
