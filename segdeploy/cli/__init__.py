"""Command-line interface: one file per command, registered on one Typer app."""

from __future__ import annotations


def main() -> None:
    """Console-script entry point."""
    from segdeploy.cli.app import app

    stdout_was_devnull = _stdout_is_devnull()
    try:
        app()
    except SystemExit as exit_:
        # rich (typer's help) and click answer a closed stdout (segdeploy --help | head -0) with exit 1,
        # after pointing stdout at /dev/null or wrapping it; the reader stopping early is not a failure.
        if exit_.code == 1 and _stdout_closed_by_a_reader(stdout_was_devnull):
            raise SystemExit(0) from None
        raise


def _stdout_is_devnull() -> bool:
    import os

    try:
        return os.path.samestat(os.fstat(1), os.stat(os.devnull))
    except OSError:
        return False


def _stdout_closed_by_a_reader(stdout_was_devnull: bool) -> bool:
    import sys

    from click.utils import PacifyFlushWrapper

    return isinstance(sys.stdout, PacifyFlushWrapper) or (_stdout_is_devnull() and not stdout_was_devnull)
