"""Training augmentation with OpenCV/numpy: random scale + crop, flip, colour jitter."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    scale_range: tuple[float, float] = (0.75, 1.5)  # relative to the training size
    flip: bool = True
    brightness: float = 0.25
    contrast: float = 0.25
    saturation: float = 0.25


def augment(image: np.ndarray, mask: np.ndarray, size: tuple[int, int], ignore_index: int,
            rng: np.random.Generator, config: AugmentConfig = AugmentConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Resize to ``size`` x a random scale, random-crop (padding with ignore) to ``size``, flip, jitter."""
    height, width = size
    scale = rng.uniform(*config.scale_range)
    scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
    image = cv2.resize(image, (scaled_w, scaled_h), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(mask, (scaled_w, scaled_h), interpolation=cv2.INTER_NEAREST_EXACT)
    pad_h, pad_w = max(0, height - scaled_h), max(0, width - scaled_w)
    if pad_h or pad_w:
        image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        mask = cv2.copyMakeBorder(mask, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=ignore_index)
    top = int(rng.integers(0, image.shape[0] - height + 1))
    left = int(rng.integers(0, image.shape[1] - width + 1))
    image = image[top:top + height, left:left + width]
    mask = mask[top:top + height, left:left + width]
    if config.flip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return _jitter(np.ascontiguousarray(image), rng, config), np.ascontiguousarray(mask)


def _jitter(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    pixels = image.astype(np.float32)
    pixels *= 1 + rng.uniform(-config.brightness, config.brightness)
    mean = pixels.mean()
    pixels = (pixels - mean) * (1 + rng.uniform(-config.contrast, config.contrast)) + mean
    gray = pixels.mean(axis=2, keepdims=True)
    pixels = gray + (pixels - gray) * (1 + rng.uniform(-config.saturation, config.saturation))
    return np.clip(pixels, 0, 255).astype(np.uint8)
