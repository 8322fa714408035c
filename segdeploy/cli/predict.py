"""``segdeploy predict ARTIFACT INPUT... -o OUTDIR``: masks (and overlays) for images, folders and videos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import BackendOpt, DeviceOpt, JsonOpt, ThreadsOpt
from segdeploy.runtime.artifacts import BackendKind, Device
from segdeploy.runtime.predict import MaskFormat


def register(app: typer.Typer) -> None:
    app.command("predict")(predict_command)


def predict_command(
    artifact: Annotated[Path, typer.Argument(help="Checkpoint, .onnx, OpenVINO .xml or TensorRT engine.")],
    inputs: Annotated[list[Path], typer.Argument(help="Image files, folders of images, video files.")],
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
) -> None:
    """Segment images and videos; write class-map PNGs, overlays and overlay videos."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from segdeploy.runtime.predict import PredictConfig, predict_files
    from segdeploy.runtime.segmenter import Segmenter

    config = PredictConfig(overlay=overlay, alpha=alpha, mask_format=mask_format, frame_masks=frame_masks)
    segmenter = Segmenter(artifact, backend=backend, device=device, tile=tile, overlap=overlap,
                          threads=threads)
    columns = (TextColumn("segmenting"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[fps]} frames/s"),
               TimeElapsedColumn())
    with segmenter, Progress(*columns, console=console.err, disable=console.STATE.quiet) as progress:
        task = progress.add_task("predict", total=None, fps="-")

        def on_frame(done: int, total: int) -> None:
            elapsed = progress.tasks[0].elapsed or 0
            progress.update(task, completed=done, total=total, fps=f"{done / elapsed:.1f}" if elapsed else "-")

        console.run_and_report(lambda: predict_files(segmenter, inputs, output, config, on_frame), _print, json_path)


def _print(report) -> None:
    console.out.print(f"segmented {report.images} images and {report.frames} frames of {report.videos} videos in "
                      f"{report.seconds:.1f} s ({report.frames_per_second:.1f} frames/s); "
                      f"wrote {len(report.written)} files")
