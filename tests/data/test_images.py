"""Image and mask decoding of untrusted files: what is accepted, and one quiet line for the rest."""

import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from segdeploy.data.images import MAX_IMAGE_PIXELS, decode_image, read_image, read_mask
from segdeploy.errors import BadInputError


def _png(array) -> bytes:
    return cv2.imencode(".png", array)[1].tobytes()


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose IHDR (CRC fixed up) declares ``width`` x ``height`` but holds a 1x1 picture's data."""
    data = bytearray(_png(np.zeros((1, 1), np.uint8)))
    ihdr = bytearray(data[12:29])  # chunk type + 13 bytes of fields
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return bytes(data)


def test_gray_alpha_16_bit_and_palette_become_bgr_uint8(tmp_path):
    assert decode_image(_png(np.full((5, 6), 7, np.uint8))).shape == (5, 6, 3)
    assert decode_image(_png(np.full((5, 6, 4), 9, np.uint8))).shape == (5, 6, 3)
    deep = decode_image(_png(np.full((5, 6, 3), 0x1234, np.uint16)))
    assert deep.dtype == np.uint8 and (deep == 0x12).all()  # the high byte, as OpenCV's IMREAD_COLOR
    Image.fromarray(np.arange(30, dtype=np.uint8).reshape(5, 6), mode="P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (5, 6, 3)


@pytest.mark.parametrize("make, message", [
    (lambda: b"not an image\n", "image is not a PNG, JPEG, BMP, TIFF or WebP image: it looks like a text file"),
    (lambda: _png(np.zeros((40, 40), np.uint8))[:-30], "image is a truncated PNG"),
    (lambda: _flip(_png(np.zeros((40, 40), np.uint8)), 60), "image is a corrupt PNG: its IDAT chunk fails its CRC-32"),
    (lambda: _png_declaring(60000, 60000), "image declares more than 134 M pixels (a decompression bomb?)"),
    (lambda: _png_declaring(16384, 10000), "image declares 16384x10000 pixels; images must have at most 134 M pixels"),
    (lambda: cv2.imencode(".bmp", np.zeros((40, 40, 3), np.uint8))[1].tobytes()[:-200],
     "image is a damaged BMP image (truncated or corrupt)"),
    (lambda: cv2.imencode(".jpg", _noise(64, 64))[1].tobytes()[:-300],
     "image is a damaged JPEG image (truncated or corrupt)"),
    (lambda: cv2.imencode(".jpg", _noise(64, 64))[1].tobytes()[:100],
     "image is a damaged JPEG image (its header is unreadable"),
], ids=["text", "png-truncated", "png-crc", "png-bomb", "png-over-limit", "bmp-truncated", "jpeg-truncated",
                                       "jpeg-header"])
def test_broken_images_are_one_quiet_line(make, message, capfd):
    with pytest.raises(BadInputError) as refused:
        decode_image(make())
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""  # no "libpng error", no OpenCV log line


def _noise(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _flip(data: bytes, offset: int) -> bytes:
    changed = bytearray(data)
    changed[offset] ^= 0xFF
    return bytes(changed)


def test_the_pixel_limit_is_checked_from_the_header_before_decoding():
    assert 16384 * 10000 > MAX_IMAGE_PIXELS  # the over-limit case above holds 1x1 pixels of data


def test_masks_accept_integer_ids_and_refuse_colour_float_and_large_ids(tmp_path):
    palette = Image.new("P", (2, 2))
    palette.putdata([0, 1, 2, 255])
    palette.putpalette([value for index in range(256) for value in (index, 255 - index, 0)])
    palette.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png").tolist() == [[0, 1], [2, 255]]  # indices, not colours
    cv2.imwrite(str(tmp_path / "w.png"), np.array([[0, 300]], np.uint16))
    with pytest.raises(BadInputError, match="mask ids must be 0-255, found 0..300"):
        read_mask(tmp_path / "w.png")
    cv2.imwrite(str(tmp_path / "c.png"), np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(BadInputError, match="single-channel"):
        read_mask(tmp_path / "c.png")
    (tmp_path / "t.png").write_bytes(_png(np.zeros((40, 40), np.uint8))[:-30])
    with pytest.raises(BadInputError, match="is a truncated PNG"):
        read_mask(tmp_path / "t.png")
