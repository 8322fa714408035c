"""Typed errors and the one mapping from error to exit code.

Library code raises these; the CLI prints ``str(error)`` as one line and exits with
``error.exit_code``. The codes follow the CLI conventions table in the README.
"""

from __future__ import annotations

import importlib
from enum import Enum
from types import ModuleType
from typing import TypeVar

EXIT_OK = 0
EXIT_CHECK_FAILED = 1
EXIT_USAGE = 2
EXIT_BAD_INPUT = 3
EXIT_MISSING_DEPENDENCY = 4
EXIT_INTERNAL = 70  # a bug in segdeploy (sysexits' EX_SOFTWARE), never caused by the user's input
REASON_CHARS = 160

E = TypeVar("E", bound=Enum)


class SegdeployError(Exception):
    """Base of every error segdeploy raises on purpose; the message is one line for users."""

    exit_code = EXIT_CHECK_FAILED


class CheckFailedError(SegdeployError):
    """A result was computed and is bad (verification or accuracy gate failed).

    ``report`` carries the computed result so callers can still show it.
    """

    exit_code = EXIT_CHECK_FAILED

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class UsageError(SegdeployError):
    """The command line or API call is malformed."""

    exit_code = EXIT_USAGE


class BadInputError(SegdeployError):
    """A file, value or data set given by the user is missing, corrupt or invalid."""

    exit_code = EXIT_BAD_INPUT


class TooLargeError(BadInputError):
    """An input is over a size limit (bytes or pixels): valid, but more than this caller accepts."""


class SegdeployWarning(UserWarning):
    """Something works but may not do what the user expects (the CLI prints it as one 'warning:' line)."""


class MissingDependencyError(SegdeployError):
    """An optional package, backend or device is not available."""

    exit_code = EXIT_MISSING_DEPENDENCY


def require(module: str, extra: str) -> ModuleType:
    """Import an optional module or raise MissingDependencyError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        needs = " (NVIDIA GPU and driver required)" if extra in ("tensorrt", "gpu") else ""
        raise MissingDependencyError(
            f"{module} is not installed ({exc}); install it with: pip install 'segdeploy[{extra}]'{needs}"
        ) from exc


def library_reason(exc: BaseException, limit: int = REASON_CHARS) -> str:
    """A library exception's message as a short clause for the end of a segdeploy sentence.

    Its first non-empty line, cut at a word boundary (never mid-word) with '...' when longer than
    ``limit``; the exception's type name when it has no message.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return shorten(printable(lines[0]) if lines else type(exc).__name__, limit)


def shorten(text: str, limit: int = REASON_CHARS) -> str:
    """``text`` cut at a word boundary (never mid-word) with ' ...' when longer than ``limit``."""
    if len(text) <= limit:
        return text
    head, space, _ = text[:limit].rpartition(" ")
    if not space:  # one token longer than the limit (a 5,000-character value): say how long, do not cut it mid-word
        return f"a value of {len(text)} characters"
    return f"{head.rstrip(' ,;:.')} ..."


def printable(text: str) -> str:
    """``text`` from an untrusted file made safe for a terminal line: control characters (escape sequences,
    newlines) become ``\\xNN`` escapes; everything printable, unicode included, stays."""
    return "".join(char if char.isprintable() else f"\\x{ord(char):02x}" if ord(char) < 256 else f"\\u{ord(char):04x}"
                   for char in text)


def check_choice(choices: type[E], value: object, what: str) -> E:
    """``value`` as a member of the str Enum ``choices``; anything else is one BadInputError line."""
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(member.value for member in choices)
        raise BadInputError(f"{what} must be one of {allowed}, got {value!r}") from None


def check_range(value: float, what: str, low: float | None = None, high: float | None = None) -> None:
    """BadInputError unless ``low <= value <= high`` (either bound may be None); NaN is never in range."""
    if value != value:  # NaN: every comparison below would be False and let it through
        raise BadInputError(f"{what} must be a number, got nan")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"<= {high}" if low is None else f"in [{low}, {high}]"
        raise BadInputError(f"{what} must be {bounds}, got {value}")


def convert_choices(config: object, choices: dict[str, tuple[type[Enum], str]]) -> None:
    """In a frozen dataclass's ``__post_init__``: each field named in ``choices`` (field -> (Enum, option
    name)) becomes its Enum member, so string values work; None stays None; anything else is BadInputError."""
    for field, (enum_type, option) in choices.items():
        value = getattr(config, field)
        if value is not None:
            object.__setattr__(config, field, check_choice(enum_type, value, option))
