"""``segdeploy export SOURCE``: checkpoint or preset -> verified ONNX; ONNX or checkpoint -> OpenVINO IR."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import ArchOpt, InputSizeOpt, JsonOpt, LayoutChoice, NumClassesOpt


class FormatChoice(str, Enum):
    onnx = "onnx"
    openvino = "openvino"


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)


def export_command(
    source: Annotated[str | None, typer.Argument(
        help="Checkpoint (.pt), preset name (e.g. unet), or an exported .onnx for --format openvino.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .onnx (or .xml) path.")] = None,
    format: Annotated[FormatChoice, typer.Option(help="onnx, or openvino IR (.xml + .bin, via a verified ONNX).")
                      ] = FormatChoice.onnx,
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
    input_layout: Annotated[LayoutChoice | None, typer.Option(help="Layout of fused uint8 input (NCHW).")] = None,
    atol: Annotated[float | None, typer.Option(help="Absolute tolerance, fraction of max|reference| (1e-4).")] = None,
    rtol: Annotated[float | None, typer.Option(help="Relative tolerance (1e-3).")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip verification against eager PyTorch.")] = False,
    recipe: Annotated[Path | None, typer.Option(help="Export recipe TOML (export/*.toml) with defaults.")] = None,
    json_path: JsonOpt = None,
) -> None:
    """Export a checkpoint or preset to ONNX and verify it against eager PyTorch."""
    from segdeploy.errors import UsageError
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.export.openvino_ir import OpenVinoConfig, export_model_to_openvino, export_openvino
    from segdeploy.export.recipe import load_recipe, merge_options
    from segdeploy.models.checkpoint import load_model
    from segdeploy.sizes import parse_hw

    loaded = load_recipe(recipe) if recipe else None
    source = source or (loaded.source if loaded else None)
    if not source:
        raise UsageError("give SOURCE (a checkpoint or preset name) or a --recipe that names one")
    ov_config = OpenVinoConfig(compress_fp16=compress_fp16)
    if source.endswith(".onnx"):
        if format != FormatChoice.openvino:
            raise UsageError(f"{source} is already ONNX; convert it with --format openvino")
        output = output or Path(source).with_suffix(".xml")
        console.info(f"converting {source} to OpenVINO IR {output} ...")
        console.run_and_report(lambda: export_openvino(source, output, ov_config), _print_openvino, json_path)
        return
    config = merge_options(
        loaded.config if loaded else ExportConfig(),
        input_size=parse_hw(input_size) if input_size else None,
        opset=opset, atol=atol, rtol=rtol,
        dynamic=False if static else None,
        with_argmax=with_argmax or None,
        fuse_normalize=fuse_normalize or None,
        input_layout=input_layout.value if input_layout else None,
        verify=False if no_verify else None,
        verbose=console.STATE.verbose or None,
    )
    classes = num_classes if num_classes is not None else (loaded.num_classes if loaded else None)
    model, meta = load_model(source, arch=arch, num_classes=classes)
    suffix = ".xml" if format == FormatChoice.openvino else ".onnx"
    output = output or Path(f"{Path(source).stem}{suffix}")
    console.info(f"exporting {meta.arch} ({meta.num_classes} classes) to {output} ...")
    if format == FormatChoice.openvino:
        console.run_and_report(lambda: _Both(*export_model_to_openvino(model, meta, output, config, ov_config)),
                               _print_both, json_path)
        return
    console.run_and_report(lambda: export_onnx(model, output, config, meta), _print_report, json_path)


class _Both:
    """The ONNX and IR reports of one --format openvino export, shown and written together."""

    def __init__(self, onnx_report, openvino_report) -> None:
        self.onnx, self.openvino = onnx_report, openvino_report

    def to_dict(self) -> dict:
        return {"onnx": self.onnx.to_dict(), "openvino": self.openvino.to_dict()}


def _print_both(both: _Both) -> None:
    _print_report(both.onnx)
    _print_openvino(both.openvino)


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
