"""Comparators for exported graphs: logits within tolerance, argmax agreement (numpy only).

Kept apart from any backend so every runtime can be checked the same way.
"""

from __future__ import annotations

import numpy as np

from segdeploy.export.config import VerificationCase


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N, H, W) difference between the largest and second-largest logit."""
    if logits.shape[1] < 2:
        return np.full((logits.shape[0], *logits.shape[2:]), np.inf, np.float32)
    top2 = np.partition(logits, -2, axis=1)[:, -2:]
    return top2[:, 1] - top2[:, 0]


def compare_logits(
    actual: np.ndarray, reference: np.ndarray, atol: float, rtol: float, min_agreement: float,
    margin: float,
) -> VerificationCase:
    """Elementwise ``|a - b| <= atol * max|b| + rtol * |b|`` and argmax agreement.

    ``atol`` is a fraction of the reference's largest magnitude so the same setting
    works for logits of any scale.
    """
    if actual.shape != reference.shape:
        return _shape_mismatch(actual)
    actual = actual.astype(np.float64)
    reference = reference.astype(np.float64)
    diff = np.abs(actual - reference)
    abs_tol = atol * float(np.abs(reference).max())
    inside = diff <= abs_tol + rtol * np.abs(reference)
    significant = np.abs(reference) > abs_tol
    max_rel = float((diff[significant] / np.abs(reference[significant])).max()) if significant.any() else 0.0
    agreement, confident = _agreement(actual.argmax(1), reference, margin)
    finite = bool(np.isfinite(actual).all())
    return VerificationCase(
        shape=tuple(reference.shape), max_abs=float(diff.max()), max_rel=max_rel,
        within_tolerance=float(inside.mean()), agreement=agreement,
        confident_fraction=confident,
        passed=finite and bool(inside.all()) and agreement >= min_agreement,
    )


def compare_masks(
    actual_mask: np.ndarray, reference_logits: np.ndarray, min_agreement: float, margin: float
) -> VerificationCase:
    """Class map from a graph ending in argmax vs the reference logits' argmax."""
    expected_shape = (reference_logits.shape[0], *reference_logits.shape[2:])
    if actual_mask.shape != expected_shape:
        return _shape_mismatch(actual_mask)
    agreement, confident = _agreement(actual_mask.astype(np.int64), reference_logits, margin)
    return VerificationCase(
        shape=tuple(actual_mask.shape), max_abs=None, max_rel=None, within_tolerance=None,
        agreement=agreement, confident_fraction=confident, passed=agreement >= min_agreement,
    )


def _agreement(actual_classes: np.ndarray, reference: np.ndarray, margin: float) -> tuple[float, float]:
    """Agreement on pixels where the reference is decided by more than ``margin``."""
    confident = top2_margin(reference) > margin
    if not confident.any():
        return 1.0, 0.0
    same = actual_classes == reference.argmax(1)
    return float(same[confident].mean()), float(confident.mean())


def _shape_mismatch(actual: np.ndarray) -> VerificationCase:
    """A failed case: the output's shape is not the reference's."""
    return VerificationCase(
        shape=tuple(actual.shape), max_abs=float("inf"), max_rel=float("inf"),
        within_tolerance=0.0, agreement=0.0, confident_fraction=0.0, passed=False,
    )
