"""Named label sets (class names and palettes) for models that arrive without segdeploy metadata,
and the class-list text file: one name per line, optionally followed by its colour ``r,g,b``.

CamVid and Cityscapes carry their datasets' own colours; Pascal VOC's palette is the bit-interleaved
one (``default_palette``), which ADE20K also gets here (its 150 official colours are not bundled).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from segdeploy.data.datasets import CAMVID_CLASSES, CAMVID_IGNORE, CAMVID_PALETTE, VOC_CLASSES
from segdeploy.errors import BadInputError, shorten
from segdeploy.fileio import require_file
from segdeploy.metadata import MAX_CLASSES, default_palette

CITYSCAPES = {  # the 19 training classes, with the dataset's colours
    "road": (128, 64, 128), "sidewalk": (244, 35, 232), "building": (70, 70, 70), "wall": (102, 102, 156),
    "fence": (190, 153, 153), "pole": (153, 153, 153), "traffic light": (250, 170, 30),
    "traffic sign": (220, 220, 0), "vegetation": (107, 142, 35), "terrain": (152, 251, 152),
    "sky": (70, 130, 180), "person": (220, 20, 60), "rider": (255, 0, 0), "car": (0, 0, 142),
    "truck": (0, 0, 70), "bus": (0, 60, 100), "train": (0, 80, 100), "motorcycle": (0, 0, 230),
    "bicycle": (119, 11, 32)}
ADE20K_CLASSES = tuple("""wall|building|sky|floor|tree|ceiling|road|bed|windowpane|grass|cabinet|sidewalk|person|
earth|door|table|mountain|plant|curtain|chair|car|water|painting|sofa|shelf|house|sea|mirror|rug|field|armchair|
seat|fence|desk|rock|wardrobe|lamp|bathtub|railing|cushion|base|box|column|signboard|chest of drawers|counter|
sand|sink|skyscraper|fireplace|refrigerator|grandstand|path|stairs|runway|case|pool table|pillow|screen door|
stairway|river|bridge|bookcase|blind|coffee table|toilet|flower|book|hill|bench|countertop|stove|palm|
kitchen island|computer|swivel chair|boat|bar|arcade machine|hovel|bus|towel|light|truck|tower|chandelier|awning|
streetlight|booth|television receiver|airplane|dirt track|apparel|pole|land|bannister|escalator|ottoman|bottle|
buffet|poster|stage|van|ship|fountain|conveyer belt|canopy|washer|plaything|swimming pool|stool|barrel|basket|
waterfall|tent|bag|minibike|cradle|oven|ball|food|step|tank|trade name|microwave|pot|animal|bicycle|lake|
dishwasher|screen|blanket|sculpture|hood|sconce|vase|traffic light|tray|ashcan|fan|pier|crt screen|plate|monitor|
bulletin board|shower|radiator|glass|clock|flag""".replace("\n", "").split("|"))
CLASS_SETS: dict[str, tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]] = {
    "camvid": (CAMVID_CLASSES, CAMVID_PALETTE),
    "cityscapes": (tuple(CITYSCAPES), tuple(CITYSCAPES.values())),
    "ade20k": (ADE20K_CLASSES, default_palette(len(ADE20K_CLASSES))),
    "voc": (VOC_CLASSES, default_palette(len(VOC_CLASSES))),
}
IGNORE_OF_SET = {"camvid": CAMVID_IGNORE}  # the others mark unlabelled pixels 255
MAX_CLASS_FILE_BYTES = 4 << 20  # 65,536 names of ~60 characters
_LINE = re.compile(r"^(?P<name>.*?)(?:[\s,]+(?P<rgb>\d{1,3},\s*\d{1,3},\s*\d{1,3}))?$")


def resolve_classes(spec: str) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    """Names and palette of a named set (``camvid``, ``cityscapes``, ``ade20k``, ``voc``) or a class-list file."""
    if spec.lower() in CLASS_SETS:
        return CLASS_SETS[spec.lower()]
    if not os.path.exists(spec):
        raise BadInputError(f"--classes {shorten(spec, 60)!r} is neither a known set ({', '.join(CLASS_SETS)}) "
                            "nor a file (one class name per line, optionally followed by r,g,b)")
    return read_class_file(spec)


def read_class_file(path: str | os.PathLike) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
    """One name per non-empty line, optionally ``name r,g,b``; colours for all lines or for none."""
    path = require_file(path, "class list")
    if path.stat().st_size > MAX_CLASS_FILE_BYTES:
        raise BadInputError(f"{path.name} is {path.stat().st_size} bytes; a class list is at most "
                            f"{MAX_CLASS_FILE_BYTES >> 20} MiB")
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except UnicodeDecodeError:
        raise BadInputError(f"{path.name} is not UTF-8 text; a class list has one name per line") from None
    if not 1 <= len(lines) <= MAX_CLASSES:
        raise BadInputError(f"{path.name} lists {len(lines)} classes; give 1 to {MAX_CLASSES}, one per line")
    names, colours = [], []
    for number, line in enumerate(lines, 1):
        match = _LINE.match(line)
        if match is None or not match["name"]:
            raise BadInputError(f"{path.name} line {number}: {shorten(line, 60)!r} is not 'name' or 'name r,g,b'")
        names.append(match["name"])
        if match["rgb"]:
            rgb = tuple(int(value) for value in match["rgb"].split(","))
            if max(rgb) > 255:
                raise BadInputError(f"{path.name} line {number}: colour values are 0-255, got {match['rgb']}")
            colours.append(rgb)
    if colours and len(colours) != len(names):
        raise BadInputError(f"{path.name}: {len(colours)} of {len(names)} lines have a colour; give one for every "
                            "class or for none")
    return tuple(names), tuple(colours) if colours else default_palette(len(names))
