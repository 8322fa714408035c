"""``segdeploy adopt MODEL.onnx -o OUT.onnx``: segdeploy metadata for a foreign segmentation ONNX."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import (
    ChannelOrderOpt,
    ClassesOpt,
    ConventionOpt,
    DivisorOpt,
    IgnoreIndexOpt,
    InputSizeOpt,
    JsonOpt,
    MeanOpt,
    NumClassesOpt,
    PixelScaleOpt,
    ResizePolicyOpt,
    StdOpt,
    label_config,
)
from segdeploy.export.adopt_config import Convention
from segdeploy.metadata import ResizePolicy
from segdeploy.sizes import format_hw


def register(app: typer.Typer) -> None:
    app.command("adopt")(adopt_command)


def adopt_command(
    model: Annotated[Path, typer.Argument(help="A segmentation ONNX without segdeploy metadata.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The adopted .onnx to write.")],
    classes: ClassesOpt = None,
    num_classes: NumClassesOpt = None,
    preprocess: ConventionOpt = Convention.IMAGENET,
    channel_order: ChannelOrderOpt = None,
    pixel_scale: PixelScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize_policy: ResizePolicyOpt = ResizePolicy.STRETCH,
    divisor: DivisorOpt = 32,
    input_size: InputSizeOpt = None,
    ignore_index: IgnoreIndexOpt = None,
    graph_output: Annotated[str | None, typer.Option(
        "--output-name", help="The graph output with logits or class ids (default: the first).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace segdeploy metadata the file already has.")] = False,
    json_path: JsonOpt = None,
) -> None:
    """Check a foreign ONNX by running it, then attach segdeploy metadata so every command can use it."""
    from segdeploy.export.adopt import AdoptConfig, adopt_onnx

    labels = label_config(classes, num_classes, preprocess, channel_order, pixel_scale, mean, std, resize_policy,
                          divisor, input_size, ignore_index)
    console.run_and_report(lambda: adopt_onnx(model, output, AdoptConfig(labels, graph_output, force)), _print,
                           json_path)


def _print(report) -> None:
    meta = report.meta
    io, pre = meta.io, meta.preprocess
    runs = ", ".join(f"{p['input'][0]}x{format_hw(p['input'][1:])} -> {'x'.join(map(str, p['output']))}"
                     for p in report.probes)
    console.out.print(
        f"wrote {report.output}: input {io.input_name!r} {io.input_dtype} {io.input_layout} "
        f"({'dynamic' if report.dynamic_batch else 'static'} batch, "
        f"{'dynamic' if report.dynamic_size else 'static'} size, eval {format_hw(pre.eval_size)}), output "
        f"{io.output_name!r} {io.output} at {io.describe_geometry()}, {meta.num_classes} classes; checked by "
        f"running {runs} ({report.seconds:.1f} s)")
