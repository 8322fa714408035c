"""The one segmentation metric: a confusion matrix accumulated over a whole split.

mIoU is the mean IoU over classes whose union is non-zero (absent from both prediction
and labels: excluded). Pixels labelled ``ignore_index`` never count. Values are
fractions 0-1. Vectorised with ``np.bincount``.
"""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """rows: reference (ground truth) class, columns: predicted class."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, prediction: np.ndarray, reference: np.ndarray) -> ConfusionMatrix:
        """Add one or many maps of class ids (same shape); returns self."""
        if prediction.shape != reference.shape:
            raise ValueError(f"prediction {prediction.shape} and reference {reference.shape} differ")
        reference = reference.astype(np.int64).ravel()
        prediction = prediction.astype(np.int64).ravel()
        valid = (reference >= 0) & (reference < self.num_classes)
        if self.ignore_index is not None:
            valid &= reference != self.ignore_index
        prediction = np.clip(prediction[valid], 0, self.num_classes - 1)
        index = reference[valid] * self.num_classes + prediction
        self.matrix += np.bincount(index, minlength=self.num_classes**2).reshape(self.matrix.shape)
        return self

    def iou(self) -> np.ndarray:
        """Per-class IoU; NaN for classes absent from both prediction and reference."""
        true_positive = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)

    def miou(self) -> float:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


class Agreement:
    """How far predictions agree with a reference's, over many images: a confusion matrix with the
    reference taken as truth. ``pixel`` is the fraction of equal pixels, ``miou`` the agreement mIoU;
    pixels whose ground-truth label is ``ignore_index`` never count (when labels are given)."""

    def __init__(self, num_classes: int, ignore_index: int | None = None) -> None:
        self.ignore_index = ignore_index
        self.matrix = ConfusionMatrix(num_classes)

    def update(self, prediction: np.ndarray, reference: np.ndarray, labels: np.ndarray | None = None) -> float:
        """Add one image; returns its pixel agreement (NaN when every pixel is ignored)."""
        if labels is not None and self.ignore_index is not None:
            reference = np.where(labels != self.ignore_index, reference, -1)  # negative ids never count
        image = ConfusionMatrix(self.matrix.num_classes).update(prediction, reference)
        self.matrix.matrix += image.matrix
        return image.pixel_accuracy()

    @property
    def pixel(self) -> float:
        return self.matrix.pixel_accuracy()

    @property
    def miou(self) -> float:
        return self.matrix.miou()
