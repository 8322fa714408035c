"""Command-line interface: one file per command, registered on one Typer app."""

from __future__ import annotations


def main() -> None:
    """Console-script entry point."""
    from segdeploy.cli.app import app

    app()
