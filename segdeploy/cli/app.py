"""The ``segdeploy`` Typer app: global options and the one error -> exit code mapping."""

from __future__ import annotations

import logging
import os
import sys
import traceback
import warnings
from typing import Annotated

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from segdeploy import __version__
from segdeploy.cli import console
from segdeploy.cli.console import STATE, debug_from_environment
from segdeploy.errors import EXIT_INTERNAL, SegdeployError, SegdeployWarning


class SegdeployGroup(TyperGroup):
    """Maps SegdeployError to one line on stderr and its exit code; tracebacks only with --debug."""

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except SegdeployError as error:
            _report(error, f"error: {error}")
            ctx.exit(error.exit_code)
        except (typer.Exit, typer.Abort, TyperException):  # typer's own: usage errors exit 2
            raise
        except KeyboardInterrupt:
            console.err.print("interrupted")
            ctx.exit(130)
        except BrokenPipeError:  # the reader went away (segdeploy ... | head): what it asked for, not a failure
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except Exception as error:  # a bug in segdeploy (input problems are SegdeployErrors): one line, exit 70
            _report(error, f"internal error (a bug in segdeploy): {type(error).__name__}: {error} "
                           "(rerun with --debug for the traceback and report it)")
            ctx.exit(EXIT_INTERNAL)


def _report(error: BaseException, line: str) -> None:
    if STATE.debug:
        console.err.print(traceback.format_exc(), markup=False, highlight=False)
    # soft_wrap: the error stays one line whatever the terminal width.
    console.err.print(line.splitlines()[0], markup=False, highlight=False, soft_wrap=True)


app = typer.Typer(
    cls=SegdeployGroup,
    name="segdeploy",
    help="Semantic segmentation from PyTorch to fast, verified deployment artifacts.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.out.print(f"segdeploy {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks (also SEGDEPLOY_DEBUG=1).")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only results and errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="More detail.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Global options apply to every command: segdeploy [--debug] [--quiet|--verbose] CMD ..."""
    STATE.debug = debug or debug_from_environment()
    STATE.quiet = quiet
    STATE.verbose = verbose
    warnings.showwarning = _show_warning
    _show_reader_log(verbose and not quiet)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """segdeploy's own warnings as one 'warning:' line on stderr; other libraries' only with --verbose."""
    if issubclass(category, SegdeployWarning):
        console.err.print(f"warning: {message}", markup=False, highlight=False, soft_wrap=True)
    elif STATE.verbose:
        console.err.print(f"warning ({category.__name__}): {message}", markup=False, highlight=False)


class _ConsoleHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        console.err.print(f"detail: {record.getMessage()}", markup=False, highlight=False, soft_wrap=True)


def _show_reader_log(show: bool) -> None:
    """With --verbose, what segdeploy logs (library warnings captured while reading untrusted files) is shown."""
    logger = logging.getLogger("segdeploy")
    for handler in [h for h in logger.handlers if isinstance(h, _ConsoleHandler)]:
        logger.removeHandler(handler)
    if show:
        logger.addHandler(_ConsoleHandler())
        logger.setLevel(logging.DEBUG)


def _register() -> None:
    # Command modules import only typer/rich at module level; heavy work is lazy.
    from segdeploy.cli import adopt, bench, build, calibration_set, demo, export, info, predict, quantize, serve, train

    for module in (export, adopt, quantize, build, predict, serve, bench, train, calibration_set, info, demo):
        module.register(app)


_register()
