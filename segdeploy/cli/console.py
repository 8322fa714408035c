"""Shared CLI state (quiet/verbose/debug) and output helpers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.console import Console


@dataclass
class CliState:
    debug: bool = False
    quiet: bool = False
    verbose: bool = False


def debug_from_environment() -> bool:
    return os.environ.get("SEGDEPLOY_DEBUG", "") not in ("", "0")


STATE = CliState(debug=debug_from_environment())
# Results go to stdout; errors and progress to stderr so `--json -` stays parseable.
# Off a terminal (CI logs, pipes) rich would assume 80 columns and cut table cells.
_WIDTH = None if os.isatty(1) else 140
out = Console(highlight=False, width=_WIDTH)
err = Console(stderr=True, highlight=False, width=_WIDTH)


def info(message: str) -> None:
    """A progress/status line on stderr, hidden by --quiet."""
    if not STATE.quiet:
        err.print(message)


def detail(message: str) -> None:
    """A line shown only with --verbose."""
    if STATE.verbose and not STATE.quiet:
        err.print(message)
