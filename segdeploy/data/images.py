"""Decoding untrusted image files and bytes: one BadInputError line for anything wrong, and quiet.

- The size comes from the header (PIL reads only that) and is checked before anything is decoded,
  so a decompression bomb is refused without allocating it.
- A PNG's chunks are walked and their CRCs checked first: corrupt and truncated PNGs get a precise
  message, and libpng, which prints "libpng error: ..." on stderr before OpenCV returns, never sees
  them.
- OpenCV's own log lines ("[ERROR:0@1.5] ... imdecode_ ...") are silenced around the decode, and
  PIL's warnings about odd files (EXIF, DecompressionBombWarning) are filtered: segdeploy decides.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
import zlib
from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image

from segdeploy.data.preprocess import to_bgr_uint8
from segdeploy.errors import BadInputError, TooLargeError, library_reason
from segdeploy.fileio import require_file
from segdeploy.sniff import damaged, describe_head

# 134 M pixels (16384 x 8192, 400 MB as BGR): more would take GBs. Under PIL's own hard limit (179 M) so that
# this check, with its sizes, is the one that speaks; PIL's DecompressionBombError stays as a backstop.
MAX_IMAGE_PIXELS = 1 << 27
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FORMATS = "PNG, JPEG, BMP, TIFF or WebP"

# PIL warns (never raises) about oddities of a file's metadata; the verdict on the file is segdeploy's.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def read_image(path: str | os.PathLike) -> np.ndarray:
    """HxWx3 uint8 BGR from an image file (see ``decode_image``)."""
    path = require_file(path, "image")
    return decode_image(path.read_bytes(), str(path))


def decode_image(data: bytes, name: str = "image", max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """HxWx3 uint8 BGR from encoded bytes (PNG, JPEG, BMP, TIFF, WebP): grayscale and alpha converted,
    16-bit scaled to 8; images over ``max_pixels`` (at most MAX_IMAGE_PIXELS) are refused from their header,
    before decoding, with TooLargeError."""
    if not data:
        raise BadInputError(f"{name} is empty")
    if _checked(data, name, min(max_pixels, MAX_IMAGE_PIXELS)):
        image = _decode_png(data, name)
    else:
        with opencv_quiet():
            image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise BadInputError(f"{name} is a damaged {_format(data)} image (truncated or corrupt); OpenCV cannot "
                            "decode it")
    if image.dtype == np.uint16:  # a 16-bit file: its high byte, as OpenCV's IMREAD_COLOR would read it
        image = (image >> 8).astype(np.uint8)
    return to_bgr_uint8(image, name)


def _checked(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> bool:
    """What every decode checks first: the pixel count from the header and, for a PNG, its chunks' CRCs.
    True when ``data`` is a PNG."""
    check_size(data, name, max_pixels)
    is_png = data.startswith(PNG_SIGNATURE)
    if is_png:
        check_png_chunks(data, name)
    return is_png


def _decode_png(data: bytes, name: str) -> np.ndarray:
    """A PNG as OpenCV's IMREAD_UNCHANGED would give it (BGR/BGRA/gray, 8 or 16 bit), decoded by PIL.

    PNG is lossless, so the pixels are the same; PIL raises on a damaged stream where libpng (inside
    OpenCV) prints "libpng error: ..." on stderr first, and PIL decodes as fast.
    """
    try:
        with Image.open(io.BytesIO(data)) as handle:
            if handle.mode not in _PNG_MODES:
                handle = handle.convert("RGBA" if "transparency" in handle.info else "RGB")
            array = np.asarray(handle)
    except MemoryError:
        raise
    except Exception as exc:  # zlib's "incorrect data check", PIL's "image file is truncated" ...
        raise BadInputError(f"{name} is a damaged PNG image (its pixel data does not decode: "
                            f"{library_reason(exc, 80)})") from exc
    if array.ndim == 3:  # RGB(A) -> BGR(A), OpenCV's order
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]
    return array


_PNG_MODES = {"L", "RGB", "RGBA", "I;16", "I;16B"}  # PIL modes that are already OpenCV-like arrays


def check_size(data: bytes, name: str, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) from the header; BadInputError if it is not an image, TooLargeError if it declares
    no pixels or more than ``max_pixels``."""
    try:
        with Image.open(io.BytesIO(data)) as header:  # parses the header only
            width, height = header.size
    except Image.DecompressionBombError as exc:  # over PIL's own limit, which sits above segdeploy's
        raise TooLargeError(f"{name} declares more than {MAX_IMAGE_PIXELS // 1_000_000} M pixels (a decompression "
                            "bomb?); images must have 1 to that many: split larger ones into parts") from exc
    except MemoryError:
        raise
    except Exception as exc:  # PIL's plugins raise many types on a malformed header
        raise BadInputError(_header_problem(name, data, exc)) from exc
    if width < 1 or height < 1:
        raise BadInputError(f"{name} declares {width}x{height} pixels; an image needs at least one")
    if width * height > max_pixels:
        raise TooLargeError(f"{name} declares {width}x{height} pixels; images must have at most "
                            f"{_megapixels(max_pixels)} M pixels (split larger ones into parts)")
    return width, height


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


def _header_problem(name: str, data: bytes, exc: Exception) -> str:
    looks = describe_head(data)
    if not looks.endswith(" image"):
        return f"{name} is not a {FORMATS} image: it looks like {looks}"
    # PIL's "cannot identify image file <_io.BytesIO object at 0x...>" says nothing more than this
    reason = "" if "cannot identify image file" in str(exc) else f": {library_reason(exc, 80)}"
    return f"{name} is {damaged(looks)} (its header is unreadable{reason})"


def check_png_chunks(data: bytes, name: str) -> None:
    """Walk the PNG's chunks up to IEND: each must fit in the file and match its CRC-32."""
    view, position = memoryview(data), len(PNG_SIGNATURE)
    while True:
        if position + 12 > len(data):
            raise BadInputError(f"{name} is a truncated PNG: it ends before its IEND chunk")
        length = int.from_bytes(view[position:position + 4], "big")
        kind = bytes(view[position + 4:position + 8])
        end = position + 12 + length
        if end > len(data):
            raise BadInputError(f"{name} is a truncated PNG: its {_chunk(kind)} chunk runs past the end of the file")
        if zlib.crc32(view[position + 4:end - 4]) != int.from_bytes(view[end - 4:end], "big"):
            raise BadInputError(f"{name} is a corrupt PNG: its {_chunk(kind)} chunk fails its CRC-32 check")
        if kind == b"IEND":
            return
        position = end


def _chunk(kind: bytes) -> str:
    return kind.decode("ascii") if kind.isalpha() else f"0x{kind.hex()}"


def _format(data: bytes) -> str:
    with contextlib.suppress(Exception), Image.open(io.BytesIO(data)) as header:
        return header.format or "image"
    return "image"


@contextlib.contextmanager
def opencv_quiet() -> Iterator[None]:
    """OpenCV's logging off for the block (it logs decoder failures on stderr before returning None).

    The level is process-wide and threads decode at once (a SegmenterPool's clients): the first block in
    silences it, the last one out restores the level it found, so the caller's setting survives any overlap.
    """
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["saved"] = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                cv2.utils.logging.setLogLevel(_quiet["saved"])


_QUIET_LOCK = threading.Lock()
_quiet = {"depth": 0, "saved": None}


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Label map as HxW uint8 class ids; palette PNGs are read by index, not colour (PIL, not OpenCV).

    Integer masks with ids up to 255 in any bit depth are accepted; colour, float or larger ids are not.
    """
    path = require_file(path, "mask")
    data = path.read_bytes()
    _checked(data, str(path))
    try:
        with Image.open(io.BytesIO(data)) as handle:
            mask = np.asarray(handle)
    except MemoryError:
        raise
    except Exception as exc:  # PIL raises OSError ("image file is truncated"), ValueError, SyntaxError ...
        raise BadInputError(f"{path} is a damaged {_format(data)} mask (truncated or corrupt): "
                            f"{library_reason(exc, 80)}") from exc
    if mask.ndim != 2:
        raise BadInputError(f"{path.name}: masks must be single-channel class ids, got shape {mask.shape}")
    if mask.dtype.kind not in "biu":
        raise BadInputError(f"{path.name}: masks must hold integer class ids, not {mask.dtype} values")
    if mask.size and (mask.min() < 0 or mask.max() > 255):
        raise BadInputError(f"{path.name}: mask ids must be 0-255, found {int(mask.min())}..{int(mask.max())}")
    return mask.astype(np.uint8)
