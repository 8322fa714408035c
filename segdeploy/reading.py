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
        raise BadInputError(f"{path} is {size / 1e6:.0f} MB, too large for a {what} (limit "
                            f"{MAX_DOCUMENT_BYTES >> 20} MB)")
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadInputError(f"{path} is not a {what}: it is {describe(path)}, not UTF-8 text") from exc


def load_json(path: str | os.PathLike, what: str) -> Any:
    """Parse an untrusted JSON document; syntax errors and absurd nesting are one BadInputError line."""
    text = read_document(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(f"{path} is not a {what}: invalid JSON ({exc.msg} at line {exc.lineno}, column "
                            f"{exc.colno})") from exc
    except RecursionError as exc:  # 10^6 nested lists: json recurses once per level
        raise BadInputError(f"{path} is not a {what}: its JSON nests too deeply") from exc


def load_toml(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """Parse an untrusted TOML document; syntax errors and absurd nesting are one BadInputError line."""
    text = read_document(path, what)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise BadInputError(f"{path} is not a valid {what}: invalid TOML ({library_reason(exc)})") from exc
    except RecursionError as exc:
        raise BadInputError(f"{path} is not a valid {what}: its TOML nests too deeply") from exc


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
