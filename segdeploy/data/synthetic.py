"""Deterministic synthetic street-like scenes with labels.

Classes overlap in colour and carry texture and noise, so a model has to use shape and
context, not a colour lookup. Used by tests, export verification and the demo.
"""

from __future__ import annotations

import cv2
import numpy as np

SYNTHETIC_CLASSES = ("sky", "ground", "block", "disc", "pole", "stripes")
NUM_SYNTHETIC_CLASSES = len(SYNTHETIC_CLASSES)
# Base BGR colour per class; each instance jitters around it.
_BASE_COLOURS = np.array(
    [[200, 160, 110], [90, 100, 110], [80, 90, 160], [60, 140, 90], [120, 120, 120], [150, 150, 60]],
    dtype=np.float32,
)


def make_scene(seed: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (H, W, 3) uint8 BGR image and (H, W) uint8 label map. Same seed, same scene."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((height, width), np.uint8)
    horizon = int(height * rng.uniform(0.3, 0.6))
    mask[horizon:] = 1
    for _ in range(rng.integers(1, 4)):
        x0, y0 = rng.integers(0, width), rng.integers(0, max(1, horizon))
        cv2.rectangle(mask, (int(x0), int(y0)), (int(x0 + rng.integers(width // 8, width // 3)),
                      int(horizon + rng.integers(0, height // 6))), 2, -1)
    for _ in range(rng.integers(1, 4)):
        centre = (int(rng.integers(0, width)), int(rng.integers(horizon // 2, height)))
        axes = (int(rng.integers(4, width // 8 + 5)), int(rng.integers(4, height // 8 + 5)))
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 3, -1)
    for _ in range(rng.integers(1, 4)):
        x = int(rng.integers(0, width))
        cv2.line(mask, (x, int(rng.integers(0, horizon + 1))), (x, height), 4, max(1, width // 80))
    stripe_top = int(rng.uniform(0.7, 0.9) * height)
    stripe_rows = (np.arange(height)[:, None] >= stripe_top) & ((np.arange(width)[None, :] // 8) % 2 == 0)
    mask[stripe_rows] = 5
    return _paint(mask, rng), mask


def make_scenes(count: int, height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``count`` scenes stacked: (N, H, W, 3) uint8 images, (N, H, W) uint8 labels."""
    pairs = [make_scene(seed * 100_003 + index, height, width) for index in range(count)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def _paint(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    height, width = mask.shape
    colours = _BASE_COLOURS + rng.normal(0, 25, _BASE_COLOURS.shape)
    image = colours[mask]
    gradient = np.linspace(-30, 30, height, dtype=np.float32)[:, None, None]
    texture = 20 * np.sin(np.arange(width, dtype=np.float32) / rng.uniform(2, 9))[None, :, None]
    image += gradient + texture * (mask[..., None] % 2) + rng.normal(0, 12, image.shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def write_synthetic_dataset(root, splits: dict[str, int], size: tuple[int, int] = (96, 128), seed: int = 0):
    """Write scenes in the generic layout: ``root/<split>/images/*.png``, ``masks/*.png``, ``classes.txt``.

    Returns ``root`` as a Path. Same arguments, same files.
    """
    from pathlib import Path

    root = Path(root)
    for offset, (split, count) in enumerate(splits.items()):
        images, masks = make_scenes(count, *size, seed=seed * 1000 + offset)
        (root / split / "images").mkdir(parents=True, exist_ok=True)
        (root / split / "masks").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            cv2.imwrite(str(root / split / "images" / f"{split}_{index:04d}.png"), images[index])
            cv2.imwrite(str(root / split / "masks" / f"{split}_{index:04d}.png"), masks[index])
    (root / "classes.txt").write_text("\n".join(SYNTHETIC_CLASSES) + "\n")
    return root
