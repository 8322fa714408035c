"""Sliding-window inference for images much larger than the model's input.

Tiles of ``tile`` pixels overlap by ``overlap``; each tile goes through the shared
pre/post-processing path, and per-class scores (logits, or one-hot votes for artifacts that
output class ids) are averaged where tiles overlap. Rows are finished as soon as no later
tile touches them, so memory is one band of ``classes x tile height x image width`` floats,
not the whole image's logits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets covering ``length`` with windows of ``tile`` (the last one flush with the end)."""
    if length <= tile:
        return [0]
    stride = max(1, round(tile * (1 - overlap)))
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def tiled_mask(image: np.ndarray, tile: tuple[int, int], overlap: float, num_classes: int,
               scores: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """(H, W) uint8 class map of ``image`` from ``scores(crop) -> (C, h, w)`` on overlapping tiles."""
    height, width = image.shape[:2]
    tile_h, tile_w = min(tile[0], height), min(tile[1], width)
    mask = np.empty((height, width), np.uint8)
    for top, bottom, band in _bands(image, tile_h, tile_w, overlap, num_classes, scores):
        mask[top:bottom] = band.argmax(0)
    return mask


def _bands(image, tile_h, tile_w, overlap, num_classes, scores) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield (top, bottom, averaged scores) for row ranges no later tile will touch."""
    height, width = image.shape[:2]
    rows, cols = tile_starts(height, tile_h, overlap), tile_starts(width, tile_w, overlap)
    total = np.zeros((num_classes, tile_h, width), np.float32)
    count = np.zeros((1, tile_h, width), np.float32)
    for index, top in enumerate(rows):
        for left in cols:
            crop = image[top:top + tile_h, left:left + tile_w]
            total[:, :, left:left + tile_w] += scores(crop)
            count[:, :, left:left + tile_w] += 1
        next_top = rows[index + 1] if index + 1 < len(rows) else top + tile_h
        done = next_top - top
        yield top, next_top, total[:, :done] / count[:, :done]
        total = np.concatenate([total[:, done:], np.zeros((num_classes, done, width), np.float32)], axis=1)
        count = np.concatenate([count[:, done:], np.zeros((1, done, width), np.float32)], axis=1)
