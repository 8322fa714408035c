"""``segdeploy demo``: the built-in end-to-end job on defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Folder for the demo's artifacts.")
    ] = Path("segdeploy-demo"),
) -> None:
    """Export unet_small and swin_seg_nano to verified ONNX and print the verification table."""
    from segdeploy.cli.export import verification_table
    from segdeploy.demo import DEMO_MODELS, run_demo

    console.info(f"demo: exporting {', '.join(DEMO_MODELS)} to {output}/ (about a minute) ...")
    for report in run_demo(output):
        console.out.print(verification_table(report.verification, title=report.meta.arch))
        console.out.print(f"{report.output}: {report.size_bytes / 1e6:.1f} MB, export {report.export_seconds:.1f} s, "
                          f"verification {report.verification.seconds:.1f} s")
    console.out.print(f"demo artifacts are in {output.resolve()}")
