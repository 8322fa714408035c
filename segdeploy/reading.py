"""Reading untrusted files: small documents parsed with one error wording; library warnings logged.

A library's warning about a user's file ("Detected pickle protocol 60 ...") is noise on a
terminal that already gets segdeploy's one-line verdict; it goes to the ``segdeploy`` logger
at DEBUG instead, which the CLI shows with ``--verbose``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import tomllib
import warnings
from collections.abc import Iterator
from typing import Any

from segdeploy.errors import BadInputError, library_reason
from segdeploy.fileio import require_file
from segdeploy.sniff import describe

LOGGER = logging.getLogger("segdeploy")


@contextlib.contextmanager
def captured_warnings(what: str) -> Iterator[None]:
    """Record every warning raised inside the block and log each at DEBUG, naming ``what`` was read.

    ``warnings.catch_warnings`` swaps process-wide state: use it around one parse in the calling
    thread, not around work other threads share.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for warning in caught:
                LOGGER.debug("%s while reading %s: %s", warning.category.__name__, what, warning.message)


MAX_DOCUMENT_BYTES = 64 << 20  # a manifest, calibration set or recipe is kilobytes; refuse before reading GBs


def read_document(path: str | os.PathLike, what: str) -> str:
    """The UTF-8 text of a small untrusted document (JSON/TOML); BadInputError if missing, huge or not text."""
    path = require_file(path, what)
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise BadInputError(f"{path} is {size / 1e6:.0f} MB, too large for {article(what)} (limit "
                            f"{MAX_DOCUMENT_BYTES >> 20} MB)")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        looks = describe(path)
        if looks == "a text file":
            raise BadInputError(f"{path} is not UTF-8 text; save the {what} as UTF-8") from exc
        raise BadInputError(f"{path} is not {article(what)}: it is {looks}") from exc


def article(noun: str) -> str:
    """'a calibration set', 'an engine manifest'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def load_json(path: str | os.PathLike, what: str) -> Any:
    """Parse an untrusted JSON document; syntax errors and absurd nesting are one BadInputError line."""
    text = read_document(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path} is not {article(what)}: invalid JSON ({exc.msg}: line {exc.lineno}, column "
                            f"{exc.colno})") from exc
    except RecursionError as exc:  # 10^6 nested lists: json recurses once per level
        raise BadInputError(f"{path} is not {article(what)}: its JSON nests too deeply") from exc
    except ValueError as exc:  # Python refuses integers of over 4300 digits (a CPU-exhaustion guard)
        raise BadInputError(f"{path} is not {article(what)}: it holds a number too long to read") from exc


def load_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """Parse an untrusted TOML document; syntax errors and absurd nesting are one BadInputError line."""
    text = read_document(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path} is not a valid {what}: invalid TOML ({library_reason(exc)})") from exc
    except RecursionError as exc:
        raise BadInputError(f"{path} is not a valid {what}: its TOML nests too deeply") from exc
    except ValueError as exc:  # integers of over 4300 digits
        raise BadInputError(f"{path} is not a valid {what}: it holds a number too long to read") from exc


def field(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``data[key]`` if present and of ``kind`` (a bool is not an int here); else BadInputError naming it."""
    if key not in data:
        raise BadInputError(f"{where} has no {key!r}")
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise BadInputError(f"{where}: {key!r} must be {names}, not {type(value).__name__}")
    return value


class NativeStderr:
    """Captures what native libraries print on fd 2 (FFmpeg's "moov atom not found") while in ``with``
    blocks; ``close()`` logs it at DEBUG and removes the sink.

    fd 2 is process-wide: other threads' stderr output inside a block is captured too. Keep the blocks to
    single native calls (opening a video, decoding a frame), never around work that reports progress.
    """

    def __init__(self, what: str) -> None:
        self._what = what
        self._sink = tempfile.TemporaryFile()
        self._saved: int | None = None

    def __enter__(self) -> NativeStderr:
        sys.stderr.flush()
        self._saved = os.dup(2)
        os.dup2(self._sink.fileno(), 2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)

    def close(self) -> None:
        self._sink.seek(0)
        printed = self._sink.read(2000).decode("utf-8", "replace").strip()
        self._sink.close()
        if printed:
            LOGGER.debug("%s: native libraries printed: %s", self._what, " | ".join(printed.splitlines()))
