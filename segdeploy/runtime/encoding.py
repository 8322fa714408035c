"""Masks and overlays as file bytes: the one encoder behind ``predict``'s files, the server's replies and
Ray batch outputs, so the same mask is the same bytes wherever it is written."""

from __future__ import annotations

import io
from collections.abc import Sequence
from enum import StrEnum

import cv2
import numpy as np

from segdeploy.errors import BadInputError


class MaskFormat(StrEnum):
    PALETTE = "palette"  # palette PNG in the metadata's colours
    IDS = "ids"  # 8-bit PNG of raw class ids


def encode_mask(mask: np.ndarray, palette: Sequence[Sequence[int]], mask_format: str) -> bytes:
    """PNG bytes of an (H, W) uint8 class map: a palette PNG coloured by ``palette`` (RGB triples), or the
    raw ids as an 8-bit grayscale PNG."""
    if mask_format == MaskFormat.IDS:
        return encode_image(mask, ".png")
    from PIL import Image

    image = Image.frombytes("P", (mask.shape[1], mask.shape[0]), np.ascontiguousarray(mask).tobytes())
    image.putpalette([channel for colour in palette for channel in colour])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """``image`` (BGR or gray uint8) encoded by OpenCV in the format its file ``suffix`` names."""
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise BadInputError(f"OpenCV cannot encode {suffix} images")
    return encoded.tobytes()
