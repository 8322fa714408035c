"""The HTTP API's rules, free of Ray and of any web framework: what a request must be and what a reply holds.

Every refusal is an ``HttpError`` with its status and a one-line message; the server turns it into
``{"error": message}``. Client mistakes are 4xx, never 500: 400 not an image / corrupt / bad query,
401 missing or wrong key, 413 too many bytes or pixels, 415 a non-image content type.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from email import policy
from email.parser import BytesParser
from enum import StrEnum

import numpy as np

from segdeploy.data.images import decode_image
from segdeploy.errors import BadInputError, TooLargeError
from segdeploy.metadata import ArtifactMeta
from segdeploy.runtime.encoding import MaskFormat, encode_image, encode_mask


class ReplyFormat(StrEnum):
    PNG = "png"  # palette PNG in the metadata's colours
    IDS = "ids"  # 8-bit PNG of class ids
    JSON = "json"  # size and per-class pixel counts and fractions
    OVERLAY = "overlay"  # the image blended with the coloured mask, JPEG


MEDIA_TYPES = {ReplyFormat.PNG: "image/png", ReplyFormat.IDS: "image/png", ReplyFormat.JSON: "application/json",
               ReplyFormat.OVERLAY: "image/jpeg"}
# Bodies sent as these are taken as image bytes and sniffed: curl --data-binary sends form-urlencoded.
RAW_BODY_TYPES = {"", "application/octet-stream", "application/x-www-form-urlencoded"}
FILE_FIELDS = ("file", "image")


class HttpError(Exception):
    """A request refused with ``status`` and a one-line ``message`` (plus optional response headers)."""

    def __init__(self, status: int, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        return json.dumps({"error": self.message}).encode()


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int
    max_pixels: int


def check_api_key(headers: Mapping[str, str], expected: str | None) -> None:
    """401 unless the request carries ``expected`` as ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
    (compared in constant time); nothing to check when the server has no key."""
    if expected is None:
        return
    given = headers.get("x-api-key")
    authorization = headers.get("authorization", "")
    if given is None and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    if given is None:
        raise HttpError(401, "this server needs an API key: send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'",
                        {"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HttpError(401, "wrong API key", {"WWW-Authenticate": "Bearer"})


def reply_format(query: Mapping[str, str]) -> ReplyFormat:
    """The ``format`` query parameter (default png); 400 for anything else."""
    value = query.get("format", ReplyFormat.PNG.value)
    try:
        return ReplyFormat(value)
    except ValueError:
        choices = ", ".join(member.value for member in ReplyFormat)
        raise HttpError(400, f"format must be one of {choices}, got {value[:40]!r}") from None


def check_declared_length(headers: Mapping[str, str], limits: Limits) -> None:
    """413 from ``Content-Length`` alone, before a byte of the body is read."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_image_bytes:
        raise _too_many_bytes(int(declared), limits)


def check_body_length(size: int, limits: Limits) -> None:
    """413 once the body read so far is over the limit (a client may send more than it declared)."""
    if size > limits.max_image_bytes:
        raise _too_many_bytes(size, limits)


def _too_many_bytes(size: int, limits: Limits) -> HttpError:
    return HttpError(413, f"the request body has {size} bytes or more; this server takes images of at most "
                          f"{limits.max_image_bytes} bytes")


def image_bytes(body: bytes, content_type: str) -> bytes:
    """The image inside a request body: the body itself, or a multipart form's ``file``/``image`` part (or
    its only part). 415 for a content type that names something other than an image."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in RAW_BODY_TYPES or media_type.startswith("image/"):
        return body
    if media_type == "multipart/form-data":
        return _form_file(body, content_type)
    raise HttpError(415, f"Content-Type {media_type[:60]!r} is not an image: send the image bytes (PNG, JPEG, WebP, "
                         "BMP) as the body, or as a multipart file field")


def _form_file(body: bytes, content_type: str) -> bytes:
    message = BytesParser(policy=policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    named = [part for part in parts if part.get_param("name", header="content-disposition") in FILE_FIELDS]
    chosen = named or (parts if len(parts) == 1 else [])
    if not chosen:
        raise HttpError(400, f"the multipart form has {len(parts)} parts and none named "
                             f"{' or '.join(FILE_FIELDS)}: send the image as the field 'file'")
    payload = chosen[0].get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def decode_request_image(data: bytes, limits: Limits) -> np.ndarray:
    """BGR uint8 from request bytes, its type sniffed from the bytes: 413 over the pixel limit, 400 for
    anything that is not a decodable image."""
    try:
        return decode_image(data, "the request body", limits.max_pixels)
    except TooLargeError as exc:
        raise HttpError(413, str(exc)) from exc
    except BadInputError as exc:
        raise HttpError(400, str(exc)) from exc


def render(fmt: ReplyFormat, mask: np.ndarray, meta: ArtifactMeta, overlay: np.ndarray | None = None) -> bytes:
    """The reply body for ``mask`` (``overlay``: the blended BGR image, for the overlay format)."""
    if fmt is ReplyFormat.PNG:
        return encode_mask(mask, meta.palette, MaskFormat.PALETTE)
    if fmt is ReplyFormat.IDS:
        return encode_mask(mask, meta.palette, MaskFormat.IDS)
    if fmt is ReplyFormat.OVERLAY:
        assert overlay is not None, "the overlay format needs the blended image"
        return encode_image(overlay, ".jpg")
    return json.dumps(mask_summary(mask, meta)).encode()


def mask_summary(mask: np.ndarray, meta: ArtifactMeta) -> dict:
    """{"height", "width", "classes": [{"id", "name", "pixels", "fraction"}, ...]} over every class."""
    counts = np.bincount(mask.ravel(), minlength=meta.num_classes)
    total = int(mask.size)
    return {"height": int(mask.shape[0]), "width": int(mask.shape[1]),
            "classes": [{"id": index, "name": meta.class_names[index], "pixels": int(counts[index]),
                         "fraction": round(int(counts[index]) / total, 6)} for index in range(meta.num_classes)]}


def metadata_payload(meta: ArtifactMeta, artifact_name: str, sha256: str, backend: str) -> dict:
    """What ``GET /v1/metadata`` answers: classes, palette, preprocessing, artifact and how it runs."""
    pre = meta.preprocess
    return {"artifact": {"name": artifact_name, "sha256": sha256}, "arch": meta.arch, "backend": backend,
            "precision": str(meta.precision), "num_classes": meta.num_classes, "classes": list(meta.class_names),
            "palette": [list(colour) for colour in meta.palette],
            "preprocess": {"channel_order": str(pre.channel_order), "pixel_scale": pre.pixel_scale,
                           "mean": list(pre.mean), "std": list(pre.std), "resize_policy": str(pre.resize_policy),
                           "eval_size": list(pre.eval_size), "divisor": pre.divisor},
            "formats": [member.value for member in ReplyFormat]}
