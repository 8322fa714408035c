"""Mutators for the fuzzing benchmark: bytes, JSON/TOML trees, OpenVINO XML, image and video headers.

Each mutator is ``(data, rng) -> (data, description)``; the rng comes from ``case_rng`` so a case is
reproducible from (base seed, reader, index). Used by benchmarks/fuzz_cases.py.
"""

from __future__ import annotations

import copy
import json
import struct
import tomllib
import xml.etree.ElementTree as ET
import zlib
from typing import Any

import numpy as np

RANDOM_LENGTHS = (0, 1, 16, 512, 4096, 65536)
INTERESTING = (0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 2**63 - 1, 2**64 - 1)
HUGE_SIDES = ((60000, 60000), (16384, 16384), (16385, 16383), (1, 1 << 28), (1 << 28, 1), (65535, 65535), (0, 0),
              (0, 32), (2**31 - 1, 1), (2**32 - 1, 2**32 - 1))
DEEP = (1000, 100_000, 1_000_000)



class Raw(str):
    """Text put verbatim into generated JSON/TOML/XML (deep nesting, over-long numbers)."""


def pick(rng: np.random.Generator, seq):
    """One element of ``seq`` (numpy's choice would coerce big ints and mixed types)."""
    return seq[int(rng.integers(len(seq)))]


def case_rng(base_seed: int, reader: str, index: int) -> np.random.Generator:
    return np.random.default_rng([base_seed, zlib.crc32(reader.encode()), index])



# -- byte mutators: (data, rng) -> (data, description) --------------------------------------
def _offset(rng, size: int) -> int:
    """Uniform, or within the first or last 2 KB (headers and trailers hold the structure)."""
    if size <= 1:
        return 0
    region, span = int(rng.integers(3)), min(size, 2048)
    return int(rng.integers(size)) if region == 0 else int(rng.integers(span)) if region == 1 else size - 1 - int(
        rng.integers(span))


def flip(data: bytes, rng):
    out = bytearray(data)
    count = min(len(out), int(rng.geometric(0.35)))
    for _ in range(count):
        out[_offset(rng, len(out))] ^= int(rng.integers(1, 256))
    return bytes(out), f"flip {count} byte(s)"


def truncate(data: bytes, rng):
    cut = int(rng.integers(len(data))) if data else 0
    return data[:cut], f"truncate at {cut} of {len(data)}"


def random_bytes(data: bytes, rng):
    size = pick(rng, RANDOM_LENGTHS)
    return rng.bytes(size), f"{size} random bytes"


def magic(data: bytes, rng):
    keep, size = pick(rng, (4, 8, 16, 64, 512)), pick(rng, RANDOM_LENGTHS)
    return data[:keep] + rng.bytes(size), f"first {keep} bytes + {size} random"


def chunk(data: bytes, rng):
    start, size, fill = _offset(rng, len(data)), int(rng.integers(1, 257)), int(rng.integers(3))
    piece = rng.bytes(size) if fill == 0 else bytes([0 if fill == 1 else 0xFF]) * size
    filler = ("random", "00", "ff")[fill]
    return data[:start] + piece + data[start + size:], f"overwrite {size} bytes at {start} ({filler})"


def ints(data: bytes, rng):
    width, order = pick(rng, (1, 2, 4, 8)), pick(rng, ("little", "big"))
    value = pick(rng, INTERESTING) & ((1 << 8 * width) - 1)
    start = _offset(rng, max(1, len(data) - width + 1))
    desc = f"{width}-byte {order} {value} at {start}"
    return data[:start] + value.to_bytes(width, order) + data[start + width:], desc


BYTES = {"random": random_bytes, "magic": magic, "flip": flip, "truncate": truncate, "chunk": chunk, "ints": ints}


# -- JSON-like trees (JSON, TOML, metadata dicts) ---------------------------------------------
def pool_value(rng, raw: bool = True) -> Any:
    """A value of the wrong type, size or content for any field."""
    values = [None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63) - 1, 10**30, 1e308, -0.0, 0.5, float("nan"),
              float("inf"), "", "a", "\x00", "\x1b[31mred", "é☃😀", "\ud800", "x" * 100_000, "../../../../etc/passwd",
              "/dev/zero", "%s%n{0}", "nan", "-1", "0x0", "99999x99999", [], {}, [1, 2, 3], [[0, 0, 0]] * 3,
              {"a": 1}, list(range(100_000))]
    if raw:
        values += [Raw("[" * depth + "]" * depth) for depth in DEEP] + [Raw("9" * 5000), Raw("1e999999")]
    return pick(rng, values)


def _paths(tree, path=()):
    yield path
    items = tree.items() if isinstance(tree, dict) else enumerate(tree[:50]) if isinstance(tree, list) else ()
    for key, value in items:
        yield from _paths(value, (*path, key))


def _keys(tree) -> list:
    keys = []
    for path in _paths(tree):
        keys.extend(k for k in path[-1:] if isinstance(k, str))
    return keys


def mutate_tree(tree: Any, rng, raw: bool = True, extra_keys: tuple = ()) -> tuple[Any, str]:
    """Replace, delete, add, re-type one node, or replace the whole document."""
    tree = copy.deepcopy(tree)
    paths = list(_paths(tree))
    path = pick(rng, paths[1:] or paths)
    op = pick(rng, ("replace", "replace", "replace", "delete", "add", "retype", "top"))
    if op == "top" or not path:
        return pool_value(rng, raw), f"document replaced ({op})"
    parent, key = tree, path[-1]
    for step in path[:-1]:
        parent = parent[step]
    if op == "replace":
        parent[key] = pool_value(rng, raw)
    elif op == "delete":
        del parent[key]
    elif op == "retype":
        value = parent[key]
        parent[key] = pick(rng, ([value], {"value": value}, str(value)[:1000], len(str(value))))
    else:
        target = parent[key] if isinstance(parent[key], dict | list) else parent
        name = pick(rng, [*extra_keys, *_keys(tree), "extra", "", "\x00"])
        if isinstance(target, dict):
            target[name] = pool_value(rng, raw)
        else:
            target.append(pool_value(rng, raw))
    return tree, f"{op} at {'/'.join(map(str, path))[:80]}"


def _with_sentinels(tree, raws: list):
    if isinstance(tree, Raw):
        raws.append(str(tree))
        return f"\x01RAW{len(raws) - 1}\x01"
    if isinstance(tree, dict):
        return {key: _with_sentinels(value, raws) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_with_sentinels(value, raws) for value in tree]
    return tree


def dump_json(tree) -> str:
    raws: list[str] = []
    text = json.dumps(_with_sentinels(tree, raws))
    for index, raw in enumerate(raws):
        text = text.replace(f'"\\u0001RAW{index}\\u0001"', raw)
    return text


def json_tree(data: bytes, rng):
    tree, desc = mutate_tree(json.loads(data), rng)
    return dump_json(tree).encode(), desc


def _toml_value(value) -> str:
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return "1979-05-27T07:32:00Z"  # TOML has no null; a datetime is the wrong type everywhere
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if value != value else "inf" if value == float("inf") else "-inf" if value < -1e308 else repr(
            value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _toml_key(key) -> str:
    return json.dumps(str(key), ensure_ascii=False)


def toml_tree(data: bytes, rng):
    from segdeploy.export.recipe import _RECIPE_KEYS

    tree, desc = mutate_tree(tomllib.loads(data.decode()), rng, extra_keys=tuple(sorted(_RECIPE_KEYS)))
    tree = tree if isinstance(tree, dict) else {"source": tree}
    text = "\n".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in tree.items()) + "\n"
    return text.encode("utf-8", "surrogatepass"), desc


# -- XML (OpenVINO IR) ------------------------------------------------------------------------
XML_VALUES = ("", "-1", "0", "1", "4294967296", "18446744073709551615", "99999999999999999999", "1e40", "nan", "inf",
              "abc", "1,2,3", "?,?", "-1,-1,-1,-1", "99999999,99999999,99999999", "é😀", "f32", "u1", "string",
              "dynamic", "opset999", "Parameter", "Const", "Result", "0,0,0,0")


def xml_struct(data: bytes, rng):
    """Change an attribute, a <dim>, the metadata JSON; delete, duplicate or rename an element; nest deeply."""
    root = ET.fromstring(data)
    parents = {child: parent for parent in root.iter() for child in parent}
    elements = [e for e in root.iter() if e is not root]
    consts = [e for e in elements if e.tag == "data" and "offset" in e.attrib]
    target = pick(rng, consts) if consts and rng.random() < 0.5 else pick(rng, elements)
    op = pick(rng, ("attr", "attr", "attr", "meta", "delete", "duplicate", "tag", "deep", "text"))
    if op == "attr":
        name = pick(rng, [*target.attrib, "offset", "size", "shape", "element_type", "id"])
        target.set(name, pick(rng, XML_VALUES))
        return _xml_bytes(root), f"<{target.tag}> {name}={target.get(name)[:20]!r}"
    if op == "meta":
        meta = next(e for e in root.iter("meta") if "value" in e.attrib)
        tree, desc = mutate_tree(json.loads(meta.get("value")), rng)
        meta.set("value", dump_json(tree))
        return _xml_bytes(root), f"metadata JSON {desc}"
    if op == "text":
        target = pick(rng, [e for e in elements if e.tag == "dim"] or elements)
        target.text = pick(rng, XML_VALUES)
    elif op == "delete":
        parents[target].remove(target)
    elif op == "duplicate":
        parents[target].insert(list(parents[target]).index(target), copy.deepcopy(target))
    elif op == "tag":
        target.tag = pick(rng, ("layer", "data", "port", "dim", "edge", "input", "net", "xyz"))
    else:
        depth = pick(rng, DEEP)
        target.append(ET.Element("fuzzdeep"))
        text = _xml_bytes(root).replace(b"<fuzzdeep />", b"<a>" * depth + b"</a>" * depth)
        return text, f"{depth} nested elements in <{target.tag}>"
    return _xml_bytes(root), f"{op} <{target.tag}>"


def _xml_bytes(root) -> bytes:
    return b'<?xml version="1.0"?>\n' + ET.tostring(root, encoding="utf-8")


# -- image, video and zip headers -------------------------------------------------------------
def _png_crc(out: bytearray, pos: int) -> None:
    length = struct.unpack(">I", out[pos:pos + 4])[0]
    end = pos + 8 + length
    if end + 4 <= len(out):
        out[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(out[pos + 4:end])))


def _png(out: bytearray, rng) -> str:
    chunks, pos = [], 8
    while pos + 8 <= len(out):
        chunks.append(pos)
        pos += 12 + struct.unpack(">I", out[pos:pos + 4])[0]
    op = pick(rng, ("size", "size", "format", "chunk", "length"))
    if op == "size":
        width, height = pick(rng, HUGE_SIDES)
        out[16:24] = struct.pack(">II", width, height)
    elif op == "format":
        out[24], out[25] = pick(rng, (1, 2, 4, 8, 16, 0)), pick(rng, (0, 2, 3, 4, 6, 5, 255))
        out[28] = pick(rng, (0, 1, 2))
    elif op == "chunk":
        pos = pick(rng, chunks)
        length = struct.unpack(">I", out[pos:pos + 4])[0]
        for _ in range(int(rng.geometric(0.4))):
            if length:
                out[pos + 8 + int(rng.integers(length))] ^= int(rng.integers(1, 256))
        _png_crc(out, pos)
        return f"PNG chunk {bytes(out[pos + 4:pos + 8])!r} changed, CRC fixed"
    else:
        pos = pick(rng, chunks)
        out[pos:pos + 4] = struct.pack(">I", pick(rng, INTERESTING) & 0xFFFFFFFF)
        return f"PNG chunk {bytes(out[pos + 4:pos + 8])!r} length changed"
    _png_crc(out, 8)
    return f"PNG IHDR {op}: {struct.unpack('>II', out[16:24])} depth {out[24]} colour {out[25]}, CRC fixed"


def _jpeg(out: bytearray, rng) -> str:
    sof = next((i for i in range(len(out) - 9) if out[i] == 0xFF and out[i + 1] in (0xC0, 0xC1, 0xC2)), None)
    if sof is None or rng.random() < 0.3:
        markers = [i for i in range(len(out) - 4) if out[i] == 0xFF and 0xC0 <= out[i + 1] <= 0xFE]
        pos = pick(rng, markers)
        out[pos + 2:pos + 4] = struct.pack(">H", pick(rng, (0, 1, 2, 0xFFFF, 0x8000)))
        return f"JPEG marker {out[pos + 1]:#x} length changed"
    height, width = pick(rng, HUGE_SIDES)
    out[sof + 5:sof + 9] = struct.pack(">HH", height & 0xFFFF, width & 0xFFFF)
    out[sof + 9] = pick(rng, (out[sof + 9], out[sof + 9], 0, 4, 255))
    return f"JPEG SOF {height & 0xFFFF}x{width & 0xFFFF} components {out[sof + 9]}"


def _bmp(out: bytearray, rng) -> str:
    side = pick(rng, (60000, -60000, 2**31 - 1, -(2**31), 0, 1 << 16, 16384))
    offset, fmt, value = pick(rng, ((18, "<i", side), (22, "<i", side), (28, "<H", pick(rng, (0, 1, 4, 64, 0xFFFF))),
                                    (30, "<I", pick(rng, (1, 2, 3, 99))), (10, "<I", pick(rng, (0, 2**31, 14)))))
    out[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return f"BMP header field at {offset} = {value}"


def _tiff(out: bytearray, rng) -> str:
    order = "<" if out[:2] == b"II" else ">"
    ifd = struct.unpack(order + "I", out[4:8])[0]
    count = struct.unpack(order + "H", out[ifd:ifd + 2])[0]
    entry = ifd + 2 + 12 * int(rng.integers(count))
    tag = struct.unpack(order + "H", out[entry:entry + 2])[0]
    if rng.random() < 0.3:
        out[entry + 4:entry + 8] = struct.pack(order + "I", pick(rng, (0, 2**31, 2**32 - 1, 65536)))
        return f"TIFF tag {tag} count changed"
    out[entry + 2:entry + 4] = struct.pack(order + "H", 4)  # LONG, so any value fits
    out[entry + 8:entry + 12] = struct.pack(order + "I", pick(rng, (0, 60000, 2**31 - 1, 2**32 - 1, 16384, 3, 64)))
    return f"TIFF tag {tag} = {struct.unpack(order + 'I', out[entry + 8:entry + 12])[0]}"


def image_header(data: bytes, rng):
    """Declared size, depth or chunk lengths changed in the format's own header (PNG CRCs kept valid)."""
    out = bytearray(data)
    if data.startswith(b"\x89PNG"):
        desc = _png(out, rng)
    elif data.startswith(b"\xff\xd8"):
        desc = _jpeg(out, rng)
    elif data.startswith(b"BM"):
        desc = _bmp(out, rng)
    elif data[:4] in (b"II*\x00", b"MM\x00*"):
        desc = _tiff(out, rng)
    else:
        return ints(data, rng)
    return bytes(out), desc


MP4_BOXES = (b"ftyp", b"moov", b"mvhd", b"trak", b"tkhd", b"mdia", b"mdhd", b"minf", b"stbl", b"stsd", b"stts",
             b"stsz", b"stco", b"stsc", b"mdat", b"mp4v", b"esds")
AVI_CHUNKS = (b"RIFF", b"LIST", b"avih", b"strh", b"strf", b"movi", b"idx1", b"00dc")


def video_box(data: bytes, rng):
    """An MP4 box or AVI chunk size, an MP4 table's entry count, or the AVI frame size set to an edge value."""
    out, avi = bytearray(data), data[:4] == b"RIFF"
    found = [(name, i) for name in (AVI_CHUNKS if avi else MP4_BOXES) for i in find_all(data, name)]
    if not found:
        return ints(data, rng)
    name, pos = pick(rng, found)
    value = pick(rng, (0, 1, 7, 8, 0x7FFFFFFF, 0xFFFFFFFF, len(data), len(data) * 2))
    if avi and name == b"avih" and rng.random() < 0.5:
        field_at = pos + 8 + pick(rng, (16, 32, 36, 24))  # total frames, width, height, streams
        out[field_at:field_at + 4] = struct.pack("<I", value)
        return bytes(out), f"AVI avih field {field_at - pos - 8} = {value}"
    if not avi and name in (b"stsz", b"stco", b"stts", b"stsc", b"stsd") and rng.random() < 0.5:
        out[pos + 8:pos + 12] = struct.pack(">I", value)
        return bytes(out), f"MP4 {name.decode()} entry count = {value}"
    at = pos + 4 if avi else pos - 4
    if at >= 0:
        out[at:at + 4] = struct.pack("<I" if avi else ">I", value)
    return bytes(out), f"{name.decode()} size = {value}"


def find_all(data: bytes, needle: bytes) -> list[int]:
    found, start = [], data.find(needle)
    while start >= 0 and len(found) < 100:
        found.append(start)
        start = data.find(needle, start + 1)
    return found

