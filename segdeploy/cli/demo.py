"""``segdeploy demo``: the built-in end-to-end job on defaults (the README's main command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for everything the demo writes.")
                      ] = Path("segdeploy-demo"),
    data: Annotated[Path | None, typer.Option(help="Run on this labelled dataset instead of synthetic scenes.")
                    ] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smaller, faster run (tests).")] = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the demo summary as JSON.")] = None,
) -> None:
    """Train, export, quantize and benchmark a small U-Net end to end; no arguments needed."""
    from segdeploy.cli.bench import print_table
    from segdeploy.demo import run_demo

    def show(report) -> None:
        print_table(report.bench)
        for line in report.rejected:
            console.out.print(f"rejected by the accuracy gate: {line}")
        console.out.print(f"trained in {report.train_seconds:.0f} s (val mIoU {report.best_miou or 0:.3f}); "
                          f"report, plots and artifacts are in {report.folder}")
        if report.recommendation:
            console.out.print(report.recommendation)

    console.run_and_report(lambda: run_demo(output, str(data) if data else None, quick, console.info), show,
                           json_path)
