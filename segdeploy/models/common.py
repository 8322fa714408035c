"""Small helpers shared by the model families."""

from __future__ import annotations


def round_up(size: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` >= ``size``.

    Written as a ceil-division product, not with ``%``: the exporter's symbolic shape
    reasoning proves divisibility of ``m * ((s + m - 1) // m)`` at once, while nested
    ``Mod`` expressions across Swin's four stages made a dynamic export take minutes.
    """
    return multiple * ((size + multiple - 1) // multiple)
