"""``segdeploy export SOURCE``: checkpoint or preset -> verified ONNX; ONNX or checkpoint -> OpenVINO IR."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import (
    ArchOpt,
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
from segdeploy.export.stage import ExportFormat
from segdeploy.metadata import InputLayout, ResizePolicy


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    source: Annotated[str | None, typer.Argument(
        help="Checkpoint (.pt), preset name (e.g. unet), or an exported .onnx for --format openvino.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .onnx (or .xml) path.")] = None,
    format: Annotated[ExportFormat, typer.Option(help="onnx, or openvino IR (.xml + .bin, via a verified ONNX).")
                      ] = ExportFormat.ONNX,
    compress_fp16: Annotated[bool, typer.Option(
        "--compress-fp16", help="openvino: FP16 weights in the .bin (OpenVINO's default; off here).")] = False,
    arch: ArchOpt = None,
    num_classes: NumClassesOpt = None,
    input_size: InputSizeOpt = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default 20; >= 19 for FP16 Q/DQ).")] = None,
    static: Annotated[bool, typer.Option("--static", help="Fixed batch 1 and H/W (default: dynamic).")] = False,
    with_argmax: Annotated[bool, typer.Option("--with-argmax", help="End in argmax: uint8 'mask' output.")] = False,
    fuse_normalize: Annotated[
        bool, typer.Option("--fuse-normalize", help="Take uint8 images; normalise in the graph.")
    ] = False,
    input_layout: Annotated[InputLayout | None, typer.Option(help="Layout of fused uint8 input (NCHW).")] = None,
    atol: Annotated[float | None, typer.Option(help="Absolute tolerance, fraction of max|reference| (1e-4).")] = None,
    rtol: Annotated[float | None, typer.Option(help="Relative tolerance (1e-3).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip verification against eager PyTorch.")] = False,
    recipe: Annotated[Path | None, typer.Option(help="Export recipe TOML (export/*.toml) with defaults.")] = None,
    model_factory: Annotated[str | None, typer.Option(
        help="Your own nn.Module: package.module:function that builds it (instead of SOURCE).")] = None,
    factory_args: Annotated[str, typer.Option(help="Keyword arguments for the factory, a JSON object.")] = "{}",
    weights: Annotated[Path | None, typer.Option(help="Weights for the factory's module: .pt state dict or "
                                                      ".safetensors.")] = None,
    output_name: Annotated[str | None, typer.Option(
        "--output-name", help="Which output holds the logits: a dict key (out), logits, or a tuple index (0).")] = None,
    classes: ClassesOpt = None,
    preprocess: ConventionOpt = Convention.IMAGENET,
    channel_order: ChannelOrderOpt = None,
    pixel_scale: PixelScaleOpt = None,
    mean: MeanOpt = None,
    std: StdOpt = None,
    resize_policy: ResizePolicyOpt = ResizePolicy.STRETCH,
    divisor: DivisorOpt = 32,
    ignore_index: IgnoreIndexOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Export a checkpoint, preset or your own module (--model-factory) to ONNX, verified against eager PyTorch."""
    from segdeploy.errors import UsageError
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.openvino_ir import OpenVinoConfig
    from segdeploy.export.recipe import load_recipe, merge_options
    from segdeploy.export.stage import default_export_path, export_model
    from segdeploy.sizes import parse_hw

    loaded = load_recipe(recipe) if recipe else None
    source = source or (loaded.source if loaded else None)
    if not source and not model_factory:
        raise UsageError("give SOURCE (a checkpoint or preset name), --model-factory, or a --recipe that names one")
    factory = None
    if model_factory:
        from segdeploy.export.adopt_config import FactoryConfig

        labels = label_config(classes, num_classes, preprocess, channel_order, pixel_scale, mean, std, resize_policy,
                              divisor, input_size, ignore_index)
        factory = FactoryConfig(model_factory, factory_args, str(weights) if weights else None, output_name, labels)
    elif _factory_options_given(locals()):
        raise UsageError("--factory-args, --weights, --output-name and the label/preprocessing options describe a "
                         "model without metadata: use them with --model-factory")
    config = merge_options(
        loaded.config if loaded else ExportConfig(),
        input_size=parse_hw(input_size) if input_size else None,
        opset=opset, atol=atol, rtol=rtol,
        dynamic=False if static else None,
        with_argmax=with_argmax or None,
        fuse_normalize=fuse_normalize or None,
        input_layout=input_layout,
        verify=False if no_verify else None,
        verbose=console.STATE.verbose or None,
    )
    count = num_classes if num_classes is not None else (loaded.num_classes if loaded else None)
    output = output or default_export_path(source or model_factory.rpartition(":")[2], format)
    console.info(f"exporting {source or model_factory} to {output} ...")
    console.run_and_report(lambda: export_model(source, output, config, format,
                                                OpenVinoConfig(compress_fp16), arch=arch, num_classes=count,
                                                factory=factory), _print_result, json_path)


# Options that only describe a --model-factory module, with their defaults.
FACTORY_ONLY = {"factory_args": "{}", "weights": None, "output_name": None, "classes": None,
                "preprocess": Convention.IMAGENET, "channel_order": None, "pixel_scale": None, "mean": None,
                "std": None, "resize_policy": ResizePolicy.STRETCH, "divisor": 32, "ignore_index": None}


def _factory_options_given(options: dict) -> bool:
    return any(options[name] != default for name, default in FACTORY_ONLY.items())


def _print_result(result) -> None:
    if result.onnx is not None:
        _print_report(result.onnx)
    if result.openvino is not None:
        _print_openvino(result.openvino)


def _print_openvino(report) -> None:
    check = report.verification
    verified = f", vs ONNX Runtime: max abs {check.max_abs:.2e}, argmax agreement {check.agreement:.4%}" if (
        check and check.max_abs is not None) else ""
    weights = "FP16 weights (--compress-fp16)" if report.compress_fp16 else "FP32 weights"
    console.out.print(f"wrote {report.output} (+ .bin): {report.size_bytes / 1e6:.1f} MB, {weights}{verified}")


def _print_report(report) -> None:
    if report.verification is not None:
        console.out.print(verification_table(report.verification, title=report.meta.arch))
    status = f"wrote {report.output}" if report.output else "wrote nothing"
    console.out.print(
        f"{status}: {report.size_bytes / 1e6:.1f} MB, opset {report.opset}, "
        f"{'dynamic' if report.dynamic else 'static'} {report.input_size[0]}x{report.input_size[1]}, "
        f"output '{report.meta.io.output_name}', export {report.export_seconds:.1f} s"
        + (f", verification {report.verification.seconds:.1f} s" if report.verification else "")
    )


def verification_table(verification, title: str) -> Table:
    table = Table(title=f"{title}: ONNX Runtime vs eager PyTorch")
    for column in ("shape", "max abs", "max rel", "within tol", "argmax agree", "confident px", "result"):
        table.add_column(column, justify="right")
    for case in verification.cases:
        table.add_row(
            "x".join(str(d) for d in case.shape),
            _fmt(case.max_abs, "{:.2e}"), _fmt(case.max_rel, "{:.2e}"),
            _fmt(case.within_tolerance, "{:.4%}"), f"{case.agreement:.4%}",
            f"{case.confident_fraction:.1%}",
            "[green]pass[/green]" if case.passed else "[red]FAIL[/red]",
        )
    return table


def _fmt(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)
