"""``segdeploy predict ARTIFACT INPUT... -o OUTDIR [--ray ...]``: masks (and overlays) for images, folders and videos;
with ``--ray``, images on Ray Data (``segdeploy.serve.batch``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import BackendOpt, DeviceOpt, JsonOpt, ThreadsOpt
from segdeploy.errors import UsageError
from segdeploy.runtime.artifacts import BackendKind, Device
from segdeploy.runtime.encoding import MaskFormat
from segdeploy.serve.batch import MAX_BATCH, MAX_CONCURRENCY, RayPredictConfig, predict_files_ray


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)


def predict_command(
    artifact: Annotated[Path, typer.Argument(help="Checkpoint, .onnx, OpenVINO .xml or TensorRT engine.")],
    inputs: Annotated[list[Path], typer.Argument(
        help="Image files, folders of images, video files, .txt lists of paths (one a line).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("predictions"),
    backend: BackendOpt = BackendKind.AUTO,
    device: DeviceOpt = Device.AUTO,
    threads: ThreadsOpt = None,
    tile: Annotated[str | None, typer.Option(help="Sliding-window tile HxW for large images.")] = None,
    overlap: Annotated[float, typer.Option(help="Tile overlap fraction.")] = 0.25,
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write blended images.")] = False,
    alpha: Annotated[float, typer.Option(help="Overlay opacity of the mask colours.")] = 0.5,
    mask_format: Annotated[MaskFormat, typer.Option(help="palette PNG or raw class ids.")] = MaskFormat.PALETTE,
    frame_masks: Annotated[bool, typer.Option("--frame-masks", help="Videos: a mask PNG per frame too.")] = False,
    json_path: JsonOpt = None,
    ray: Annotated[bool, typer.Option("--ray", help="Images on Ray Data: resumable, several model actors.")] = False,
    address: Annotated[str | None, typer.Option(
        help="--ray: 'auto' joins this machine's cluster (ray start --head); default: a new local instance.")] = None,
    concurrency: Annotated[int | None, typer.Option(
        min=1, max=MAX_CONCURRENCY, help="--ray: model actors (default 1).")] = None,
    batch: Annotated[int | None, typer.Option(min=1, max=MAX_BATCH, help="--ray: images per actor call (default 8).")
                     ] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="--ray: replace outputs made with another model or other options.")] = False,
) -> None:
    """Segment images and videos; write class-map PNGs, overlays and overlay videos (--ray: images on Ray Data,
    resumable)."""
    if ray:
        if frame_masks:
            raise UsageError("--frame-masks is for videos, which --ray does not take; run videos without --ray")
        _predict_ray(artifact, inputs, output, json_path, RayPredictConfig(
            overlay=overlay, alpha=alpha, mask_format=mask_format, backend=backend, device=device, threads=threads,
            tile=tile, overlap=overlap, address=address, overwrite=overwrite,
            **{name: value for name, value in (("concurrency", concurrency), ("batch", batch)) if value is not None}))
        return
    given = [name for name, value in (("--address", address), ("--concurrency", concurrency), ("--batch", batch),
                                      ("--overwrite", overwrite or None)) if value is not None]
    if given:
        raise UsageError(f"{given[0]} works with --ray only; add --ray or leave it out")
    from segdeploy.runtime.predict import PredictConfig, predict_files
    from segdeploy.runtime.segmenter import Segmenter

    config = PredictConfig(overlay=overlay, alpha=alpha, mask_format=mask_format, frame_masks=frame_masks)
    segmenter = Segmenter(artifact, backend=backend, device=device, tile=tile, overlap=overlap,
                          threads=threads)
    with segmenter, _progress("frames") as on_frame:
        console.run_and_report(lambda: predict_files(segmenter, inputs, output, config, on_frame), _print, json_path)


def _predict_ray(artifact: Path, inputs: list[Path], output: Path, json_path: Path | None,
                 config: RayPredictConfig) -> None:
    with _progress("images") as on_progress:
        console.run_and_report(lambda: predict_files_ray(artifact, inputs, output, config, on_progress),
                               _print_ray, json_path)


@contextlib.contextmanager
def _progress(unit: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr (hidden by --quiet) with ``unit``/s; yields its ``update(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("segmenting"), BarColumn(), MofNCompleteColumn(),
               TextColumn(f"{{task.fields[fps]}} {unit}/s"), TimeElapsedColumn())
    with Progress(*columns, console=console.err, disable=console.STATE.quiet) as progress:
        task = progress.add_task("predict", total=None, fps="-")

        def update(done: int, total: int) -> None:
            elapsed = progress.tasks[0].elapsed or 0
            progress.update(task, completed=done, total=total, fps=f"{done / elapsed:.1f}" if elapsed else "-")

        yield update


def _print_ray(report) -> None:
    console.out.print(f"segmented {report.images - report.skipped} images in {report.seconds:.1f} s "
                      f"({report.images_per_second:.1f} images/s; {report.skipped} of {report.images} were done "
                      f"already); wrote {report.written} files")


def _print(report) -> None:
    console.out.print(f"segmented {report.images} images and {report.frames} frames of {report.videos} videos in "
                      f"{report.seconds:.1f} s ({report.frames_per_second:.1f} frames/s); "
                      f"wrote {len(report.written)} files")
