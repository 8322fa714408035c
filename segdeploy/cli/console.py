"""Shared CLI state (quiet/verbose/debug) and output helpers."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
# Off a terminal (CI logs, pipes, files) rich would assume 80 columns and break words inside table
# cells ("onnxruntim/e"); tables are printed at their natural width there instead, never folded.
_WIDTH = None if os.isatty(1) else 1000


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (segdeploy ... | head): stop writing and let the CLI end with exit 0
        (rich's own handler exits 1, which reads as a failure)."""
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's final flush must not fail
        raise BrokenPipeError


out = _Console(highlight=False, width=_WIDTH)
err = _Console(stderr=True, highlight=False, width=_WIDTH)


def info(message: str) -> None:
    """A progress/status line on stderr, hidden by --quiet."""
    if not STATE.quiet:
        err.print(message)


def detail(message: str) -> None:
    """A line shown only with --verbose."""
    if STATE.verbose and not STATE.quiet:
        err.print(message)


def run_and_report(action: Callable[[], Any], show: Callable[[Any], None], json_path: Path | None) -> Any:
    """Run ``action``; show its report and write ``--json``, also for the report a failed check carries."""
    from segdeploy.errors import CheckFailedError
    from segdeploy.fileio import write_json

    try:
        report = action()
    except CheckFailedError as failure:
        if failure.report is not None:
            _emit(failure.report, show, json_path, write_json)
        raise
    _emit(report, show, json_path, write_json)
    return report


def _emit(report: Any, show: Callable[[Any], None], json_path: Path | None, write_json) -> None:
    show(report)
    if json_path:
        write_json(json_path, report.to_dict())


@contextlib.contextmanager
def progress_bars() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """Progress bars on stderr (hidden by --quiet): ``bar(label)`` gives an ``update(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, disable=STATE.quiet) as progress:
        tasks: dict[str, Any] = {}

        def bar(label: str) -> Callable[[int, int], None]:
            def update(done: int, total: int) -> None:
                if label not in tasks:
                    tasks[label] = progress.add_task(label, total=total)
                progress.update(tasks[label], completed=done, total=total)
            return update

        yield bar
