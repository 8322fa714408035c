"""``segdeploy bench --artifact SPEC ...`` (or ``--engine``): latency, mIoU and agreement for many artifacts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import DeviceOpt, InputSizeOpt, JsonOpt, ThreadsOpt
from segdeploy.runtime.artifacts import Device


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)


def bench_command(
    artifact: Annotated[list[str], typer.Option(
        "--artifact", "--engine",
        help="PATH[@BACKEND[:OPTION]], repeatable: unet.onnx, unet.onnx@openvino:f32, unet.pt, unet.engine.")],
    reference: Annotated[Path | None, typer.Option(
        help="Reference: an eager fp32 checkpoint, or an fp32 .onnx for adopted models (default: the "
             "artifacts' source, when it has metadata).")] = None,
    data: Annotated[Path | None, typer.Option(help="Labelled dataset (default: synthetic scenes, agreement only).")
                    ] = None,
    split: Annotated[str, typer.Option(help="Split of --data.")] = "val",
    num_images: Annotated[int | None, typer.Option(
        help="Images for accuracy and end2end timing (default: the whole split; 50 synthetic scenes).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Batch size of the infer timing.")] = 1,
    input_size: InputSizeOpt = None,
    warmup: Annotated[str, typer.Option(help="Warm-up: iterations (20) or seconds (2s).")] = "10",
    iters: Annotated[int | None, typer.Option(min=1, help="Timed infer iterations per artifact.")] = None,
    duration: Annotated[str | None, typer.Option(help="Timed infer seconds per artifact instead (10s).")] = None,
    threads: ThreadsOpt = None,
    device: DeviceOpt = Device.AUTO,
    markdown: Annotated[Path | None, typer.Option(help="Write the table as Markdown.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for PNG plots.")] = None,
    json_path: JsonOpt = None,
) -> None:
    """Benchmark artifacts side by side: latency percentiles, mIoU and agreement with the eager reference."""
    from segdeploy.bench.report import write_outputs
    from segdeploy.bench.runner import BenchConfig, bench_artifacts
    from segdeploy.bench.stats import Budget, parse_budget
    from segdeploy.errors import CheckFailedError, UsageError
    from segdeploy.sizes import parse_hw_list

    if iters is not None and duration is not None:
        raise UsageError("give --iters or --duration, not both")
    config = BenchConfig(
        artifacts=tuple(artifact), reference=str(reference) if reference else None, data=str(data) if data else None,
        split=split, num_images=num_images, batch=batch,
        input_sizes=tuple(parse_hw_list(input_size)) if input_size else (), warmup=parse_budget(warmup, "--warmup"),
        iters=(parse_budget(duration, "--duration", bare_is_seconds=True) if duration
               else Budget(iterations=iters or 50)),
        threads=threads, device=device,
    )
    with console.progress_bars() as bar:  # one bar per phase label
        report = bench_artifacts(config, lambda phase, done, total: bar(phase)(done, total))
    print_table(report)
    written = write_outputs(report, json_path, markdown, plots)
    if plots:
        console.info(f"wrote {len(written)} plots to {plots}")
    if report.failed:
        raise CheckFailedError(f"{len(report.failed)} of {len(report.results)} artifacts failed: "
                               + "; ".join(f"{result.spec.label}: {result.error}" for result in report.failed))


def print_table(report) -> None:
    """The bench table on stdout and the noisy-machine warning on stderr."""
    from segdeploy.bench.report import COLUMNS, noisy_warning, table_rows, title

    table = Table(title=f"segdeploy bench: {title(report)}")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column in ("artifact", "backend", "precision") else "right")
    for row in table_rows(report):
        table.add_row(*(escape(cell) for cell in row))
    console.out.print(table)
    for warning in report.warnings:
        console.info(f"warning: {warning}")
    warning = noisy_warning(report)
    if warning:
        console.info(f"warning: {warning}")
