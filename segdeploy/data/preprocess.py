"""The one preprocessing path: images as OpenCV reads them -> model input, and back.

Driven only by the metadata's preprocessing contract; nothing else in segdeploy
normalises images.
"""

from __future__ import annotations

import numpy as np

from segdeploy.metadata import ChannelOrder, Preprocess


def normalize(images_bgr: np.ndarray, pre: Preprocess) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32 normalised per the contract."""
    images = images_bgr[..., ::-1] if pre.channel_order == ChannelOrder.RGB else images_bgr
    scale, offset = normalization_affine(pre)
    batch = images.astype(np.float32) * scale + offset
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def normalization_affine(pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``scale, offset`` with ``normalised = pixel * scale + offset``.

    One multiply-add instead of scale, subtract, divide; also what a fused graph bakes in.
    """
    std = np.asarray(pre.std, dtype=np.float32)
    mean = np.asarray(pre.mean, dtype=np.float32)
    return np.float32(pre.pixel_scale) / std, -mean / std
