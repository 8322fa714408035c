"""Segmentation losses: ce, dice, focal and ce+dice, all honouring the ignore label."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from segdeploy.train.config import Loss


def class_weights_from_counts(counts: np.ndarray) -> torch.Tensor:
    """ENet-style weights 1 / ln(1.02 + frequency), normalised to mean 1 (rare classes weigh more)."""
    frequency = counts / max(1, counts.sum())
    weights = 1.0 / np.log(1.02 + frequency)
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """1 - mean soft Dice over classes present in the batch, ignored pixels excluded."""
    valid = (target != ignore_index).unsqueeze(1)
    probabilities = logits.softmax(1) * valid
    one_hot = F.one_hot(target.clamp(0, logits.shape[1] - 1), logits.shape[1]).permute(0, 3, 1, 2) * valid
    intersection = (probabilities * one_hot).sum((0, 2, 3))
    total = probabilities.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    present = one_hot.sum((0, 2, 3)) > 0
    dice = (2 * intersection + 1.0) / (total + 1.0)
    return 1 - dice[present].mean() if present.any() else logits.sum() * 0


def focal_loss(logits: torch.Tensor, target: torch.Tensor, ignore_index: int, weight: torch.Tensor | None,
               gamma: float = 2.0) -> torch.Tensor:
    ce = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction="none")
    probability = torch.exp(-F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none"))
    valid = target != ignore_index
    focal = (1 - probability) ** gamma * ce
    return focal[valid].mean() if valid.any() else logits.sum() * 0


def segmentation_loss(name: Loss, logits: torch.Tensor, target: torch.Tensor, ignore_index: int,
                      weight: torch.Tensor | None = None) -> torch.Tensor:
    """The named loss for logits (N, C, H, W) and targets (N, H, W) int64."""
    if name == Loss.DICE:
        return dice_loss(logits, target, ignore_index)
    if name == Loss.FOCAL:
        return focal_loss(logits, target, ignore_index, weight)
    cross_entropy = F.cross_entropy(logits, target, weight=weight, ignore_index=ignore_index)
    return cross_entropy + dice_loss(logits, target, ignore_index) if name == Loss.CE_DICE else cross_entropy


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor, ignore_index: int,
                      temperature: float, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise KL(teacher || student) of temperature-softened logits, times T^2 (Hinton et al.),
    averaged over pixels whose label is not ``ignore_index``; zero when the logits are equal.

    With ``weight`` (one per class) the average is weighted by each pixel's label class, as
    ``F.cross_entropy`` weights its mean: the distillation term then keeps the same emphasis on
    rare classes as a class-weighted segmentation loss instead of pulling the student back
    towards the frequent ones."""
    log_student = F.log_softmax(student / temperature, dim=1)
    log_teacher = F.log_softmax(teacher / temperature, dim=1)
    per_pixel = (log_teacher.exp() * (log_teacher - log_student)).sum(1)  # (N, H, W)
    valid = target != ignore_index
    if not valid.any():
        return student.sum() * 0
    if weight is None:
        return per_pixel[valid].mean() * temperature**2
    pixel_weight = weight.to(per_pixel.device)[target[valid]]
    return (per_pixel[valid] * pixel_weight).sum() / pixel_weight.sum() * temperature**2
