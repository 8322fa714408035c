"""An OpenVINO IR pair (.xml + .bin) checked before OpenVINO reads it, and OpenVINO's errors made one line.

OpenVINO, given a file its IR frontend does not claim, tries its other frontends on it (TensorFlow
prints "text_format.cc Error parsing ..." on stderr) and then reports a source location as the first
line of its message. Parsing the XML first (Python's expat refuses entity-expansion bombs) and
checking that the .bin holds every constant the XML points into gives a precise line instead.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path

from segdeploy.errors import BadInputError, library_reason, printable, shorten
from segdeploy.fileio import require_file
from segdeploy.sniff import describe


def check_ir_pair(xml: str | os.PathLike) -> Path:
    """``xml`` if it is an OpenVINO IR whose .bin exists and is long enough; else one BadInputError line."""
    xml = require_file(xml, "OpenVINO IR")
    try:
        root = _parse_shallow(xml)
    except ElementTree.ParseError as exc:
        looks = describe(xml)
        what = "damaged XML" if looks == "a text file" else looks
        raise BadInputError(f"{xml} is not an OpenVINO IR: it is {what} ({library_reason(exc, 80)})") from exc
    if root.tag != "net":
        raise BadInputError(f"{xml} is XML but not an OpenVINO IR (its root element is <{root.tag[:40]}>, not <net>)")
    needed = _weights_bytes(root, xml)
    weights = xml.with_suffix(".bin")
    if needed and not weights.is_file():
        raise BadInputError(f"{xml} has no weights file {weights.name} beside it; copy the .xml and .bin together")
    if needed and weights.stat().st_size < needed:
        raise BadInputError(f"{weights} is truncated: {weights.stat().st_size} bytes, but {xml.name} reads up to "
                            f"byte {needed}; copy the .xml and .bin together again")
    return xml


MAX_XML_DEPTH = 64  # an IR nests ~8 deep (net/layers/layer/output/port/dim, rt_info a little more)


def _parse_shallow(xml: Path) -> ElementTree.Element:
    """The parsed tree, refused as soon as elements nest deeper than MAX_XML_DEPTH (10^6 nested elements
    would take OpenVINO's reader minutes)."""
    depth, root = 0, None
    for event, element in ElementTree.iterparse(xml, events=("start", "end")):
        depth += 1 if event == "start" else -1
        root = element if root is None else root
        if depth > MAX_XML_DEPTH:
            raise BadInputError(f"{xml} is not an OpenVINO IR: its XML nests deeper than {MAX_XML_DEPTH} elements")
    return root


def _weights_bytes(root: ElementTree.Element, xml: Path) -> int:
    """The end of the furthest constant the IR reads from its .bin (0 when it has none)."""
    end = 0
    for data in root.iterfind("./layers/layer[@type='Const']/data"):
        try:
            offset, size = int(data.get("offset", "0")), int(data.get("size", "0"))
        except ValueError as exc:
            raise BadInputError(f"{xml} is a damaged OpenVINO IR: a constant's offset or size is not a number") \
                from exc
        if offset < 0 or size < 0:
            raise BadInputError(f"{xml} is a damaged OpenVINO IR: a constant has a negative offset or size")
        end = max(end, offset + size)
    return end


def openvino_reason(exc: Exception) -> str:
    """OpenVINO's message without its 'Exception from src/...cpp:84:' location lines."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    meaningful = [line for line in lines if not line.startswith(("Exception from", "Check '"))] or lines
    return shorten(printable(meaningful[0])) if meaningful else type(exc).__name__
