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


def agreement(prediction: np.ndarray, other: np.ndarray, labels: np.ndarray | None = None,
              ignore_index: int | None = None) -> float:
    """Fraction of pixels where two predictions agree: on non-ignored pixels when labels exist."""
    same = prediction == other
    if labels is not None and ignore_index is not None:
        keep = labels != ignore_index
        return float(same[keep].mean()) if keep.any() else float("nan")
    return float(same.mean())
