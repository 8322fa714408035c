"""Parsing of the ``HxW`` sizes used by every command (height first)."""

from __future__ import annotations

import re

from segdeploy.errors import BadInputError, shorten

MAX_SIDE = 4096  # the largest model input side segdeploy runs (MAX_INPUT_PIXELS is 4096x4096)
_HW = re.compile(r"^\s*(-?\d+)\s*[xX]\s*(-?\d+)\s*$")


def parse_hw(text: str) -> tuple[int, int]:
    """Parse ``"360x480"`` into ``(360, 480)``; both parts must be positive integers."""
    match = _HW.match(text)
    shown = shorten(repr(text), 40)  # the text may come from a file: bounded in the message
    if not match:
        raise BadInputError(f"size {shown} is not HxW (height first), e.g. 360x480")
    height, width = int(match.group(1)), int(match.group(2))
    if height < 1 or width < 1:
        raise BadInputError(f"size {shown} must be positive in both dimensions")
    if max(height, width) > MAX_SIDE:
        raise BadInputError(f"size {shown} is over {MAX_SIDE} pixels on a side; use tiling for larger images")
    return height, width


def parse_hw_list(text: str) -> list[tuple[int, int]]:
    """Parse a comma-separated list of sizes, e.g. ``"360x480,720x960"``."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise BadInputError("no size given; expected HxW or a comma-separated list of HxW")
    return [parse_hw(part) for part in parts]


def format_hw(size: tuple[int, int]) -> str:
    """Format ``(360, 480)`` as ``"360x480"``."""
    return f"{size[0]}x{size[1]}"


def round_up(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` >= ``size``.

    Written as a ceil-division product, not with ``%``: the exporter's symbolic shape
    reasoning proves divisibility of ``m * ((s + m - 1) // m)`` at once, while nested
    ``Mod`` expressions across Swin's four stages made a dynamic export take minutes.
    """
    return multiple * ((size + multiple - 1) // multiple)
