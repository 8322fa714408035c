"""``SegmentClient``: a small client for ``segdeploy serve`` (the standard library's HTTP, no Ray, no torch).

``SegmentClient(url, api_key=None).predict(image) -> (H, W) uint8 class ids``. Overload (503, with
``Retry-After``), a replica dying mid-request (502/503/504 from Ray's proxy) and dropped connections are
retried with exponential backoff; client errors (4xx) are raised at once as ``ServerError`` with the
server's one-line message.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from http.client import HTTPException
from pathlib import Path

import cv2
import numpy as np

from segdeploy.errors import SegdeployError

RETRY_STATUSES = {500, 502, 503, 504}  # 500 too: Ray's proxy answers a replica killed mid-request with it


class ServerError(SegdeployError):
    """The server refused or failed a request: ``status`` and its one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class SegmentClient:
    """Calls ``url`` (e.g. ``http://127.0.0.1:8000``); ``retries`` extra attempts per request, waiting
    ``backoff_s`` x 2^attempt (with jitter, or what ``Retry-After`` asks) between them."""

    def __init__(self, url: str, api_key: str | None = None, timeout_s: float = 60.0, retries: int = 5,
                 backoff_s: float = 0.2) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.retried = 0  # attempts repeated so far (for load tests)

    def predict(self, image: np.ndarray | bytes | str | os.PathLike) -> np.ndarray:
        """(H, W) uint8 class ids for an image: a BGR array (sent as PNG, lossless), encoded bytes, or a file."""
        reply = self.segment(_image_bytes(image), "ids")
        mask = cv2.imdecode(np.frombuffer(reply, np.uint8), cv2.IMREAD_UNCHANGED)
        if mask is None or mask.ndim != 2:
            raise ServerError(200, "the reply is not a class-id PNG")
        return mask

    def segment(self, data: bytes, fmt: str = "png") -> bytes:
        """The raw reply body of ``POST /v1/segment?format=fmt`` for encoded image bytes."""
        return self._request("POST", f"/v1/segment?format={fmt}", data)

    def metadata(self) -> dict:
        return json.loads(self._request("GET", "/v1/metadata"))

    def healthy(self) -> bool:
        """True when ``/healthz`` answers 200 now (no retries)."""
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=self.timeout_s) as reply:
                return reply.status == 200
        except (urllib.error.URLError, HTTPException, OSError):
            return False

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/octet-stream"} if data is not None else {}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key}"
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as reply:
                    return reply.read()
            except urllib.error.HTTPError as error:
                body = error.read()
                if error.code not in RETRY_STATUSES or attempt == self.retries:
                    raise ServerError(error.code, _message(body)) from None
                wait = _retry_after(error.headers.get("Retry-After"))
            except (urllib.error.URLError, HTTPException, ConnectionError, TimeoutError) as error:
                if attempt == self.retries:
                    raise ServerError(0, f"cannot reach {self.url}: {getattr(error, 'reason', error)}") from None
                wait = None
            self.retried += 1
            time.sleep(wait if wait is not None else self.backoff_s * 2 ** attempt * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable: the last attempt returns or raises")


def _image_bytes(image: np.ndarray | bytes | str | os.PathLike) -> bytes:
    if isinstance(image, bytes):
        return image
    if isinstance(image, np.ndarray):
        ok, encoded = cv2.imencode(".png", image)
        if not ok:
            raise SegdeployError(f"cannot encode a {image.shape} {image.dtype} array as PNG")
        return encoded.tobytes()
    return Path(image).read_bytes()


def _message(body: bytes) -> str:
    try:
        return str(json.loads(body)["error"])
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace").strip() or "(no message)"


def _retry_after(value: str | None) -> float | None:
    return float(value) if value is not None and value.strip().isdigit() else None
