"""``segdeploy quantize MODEL.onnx --precision fp16|int8|int8-dynamic``: quantize with an accuracy gate."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import JsonOpt, PrecisionChoice, SelectChoice


class TargetChoice(str, Enum):
    tensorrt = "tensorrt"
    cpu = "cpu"


class MethodChoice(str, Enum):
    minmax = "minmax"
    entropy = "entropy"
    percentile = "percentile"


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize_command)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def quantize_command(
    model: Annotated[Path, typer.Argument(help="An fp32 ONNX exported by segdeploy.")],
    precision: Annotated[PrecisionChoice, typer.Option(help="fp16, int8 (calibrated QDQ) or int8-dynamic.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Output .onnx path.")] = None,
    target: Annotated[TargetChoice | None, typer.Option(help="tensorrt (int8, fp16 default) or cpu.")] = None,
    calib: Annotated[str | None, typer.Option(help="Calibration images: manifest, dataset or image folder.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Where a manifest's relative paths resolve.")] = None,
    num_images: Annotated[int, typer.Option(help="Calibration images (capped by what exists).")] = 96,
    select: Annotated[SelectChoice, typer.Option(help="How calibration images are chosen.")] = SelectChoice.random,
    seed: Annotated[int, typer.Option(help="Seed for the calibration selection.")] = 0,
    method: Annotated[MethodChoice, typer.Option(help="Calibration method.")] = MethodChoice.entropy,
    percentile: Annotated[float, typer.Option(help="Percentile for --method percentile.")] = 99.999,
    per_channel: Annotated[bool, typer.Option(help="Per-channel weight scales.")] = True,
    exclude_nodes: Annotated[str | None, typer.Option(help="Comma-separated node names kept in float.")] = None,
    exclude_ops: Annotated[str | None, typer.Option(help="Comma-separated op types kept in float.")] = None,
    exclude_modules: Annotated[str | None, typer.Option(
        help="Comma-separated module paths kept in float (e.g. stem,down.0), from the export's node metadata.")] = None,
    sensitivity: Annotated[bool, typer.Option(
        "--sensitivity", help="Rank module groups by the agreement they recover when left in float.")] = False,
    sensitivity_images: Annotated[int, typer.Option(help="Held-out images per sensitivity trial.")] = 8,
    auto_exclude: Annotated[int, typer.Option(help="Keep the K most sensitive groups in float (runs "
                                                   "--sensitivity).")] = 0,
    cpu_activations: Annotated[str, typer.Option(help="cpu target: u8 (asymmetric) or s8 (symmetric).")] = "u8",
    high_precision: Annotated[str, typer.Option(help="tensorrt target: remainder fp16 (ModelOpt) or fp32.")] = "fp16",
    eval_data: Annotated[Path | None, typer.Option(help="Held-out dataset for the accuracy gate.")] = None,
    eval_split: Annotated[str | None, typer.Option(help="Split of --eval-data (default val).")] = None,
    eval_images: Annotated[int, typer.Option(help="At most this many evaluation images.")] = 50,
    max_miou_drop: Annotated[float, typer.Option(help="Gate with labels: mIoU drop in points.")] = 1.0,
    min_agreement: Annotated[float, typer.Option(help="Gate without labels: agreement mIoU.")] = 0.98,
    json_path: JsonOpt = None,
) -> None:
    """Quantize an ONNX model; the result is checked on held-out images and gated."""
    from segdeploy.errors import BadInputError
    from segdeploy.quantize.config import AccuracyGate, Fp16Config, QuantConfig

    if cpu_activations not in ("u8", "s8"):
        raise BadInputError(f"--cpu-activations must be u8 or s8, got {cpu_activations!r}")
    gate = AccuracyGate(str(eval_data) if eval_data else None, eval_split, eval_images, max_miou_drop, min_agreement)
    config = QuantConfig(
        target=target.value if target else None, method=method.value, percentile=percentile, num_images=num_images,
        seed=seed, select=select.value, per_channel=per_channel, data_root=str(data_root) if data_root else None,
        exclude_nodes=_names(exclude_nodes), exclude_ops=_names(exclude_ops), exclude_modules=_names(exclude_modules),
        sensitivity=sensitivity, sensitivity_images=sensitivity_images, auto_exclude=auto_exclude,
        cpu_activations=cpu_activations, high_precision=high_precision, gate=gate,
    )
    suffix = precision.value.replace("-", "_") + (f"_{target.value}" if target else "")
    output = output or model.with_name(f"{model.stem}_{suffix}.onnx")
    console.run_and_report(lambda: _run(model, output, precision, calib, config, Fp16Config(gate=gate)), _print,
                           json_path)


def _run(model, output, precision, calib, config, fp16_config):
    from segdeploy.errors import BadInputError

    if precision == PrecisionChoice.fp16:
        from segdeploy.quantize.fp16 import convert_fp16

        return convert_fp16(model, output, fp16_config)
    if precision == PrecisionChoice.int8_dynamic:
        from segdeploy.quantize.dynamic import quantize_dynamic

        return quantize_dynamic(model, output, config)
    if precision == PrecisionChoice.fp32:
        raise BadInputError("--precision fp32 is what export writes; choose fp16, int8 or int8-dynamic")
    if not calib:
        raise BadInputError("--precision int8 needs --calib (a manifest, dataset or image folder): "
                            "segdeploy never calibrates on random data")
    from segdeploy.quantize.int8 import quantize_int8

    with console.progress_bars() as bar:
        return quantize_int8(model, output, calib, config, on_image=bar("calibrating"),
                             on_group=bar("sensitivity (one group in float per trial)"))


def _print(report) -> None:
    table = Table(title=f"quantize: {report.precision} for {report.target}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    accuracy = report.accuracy
    ops = ", ".join(f"{op} {count}" for op, count in report.quantized_ops.items()) or "-"
    rows = [("output", report.output or "nothing written"), ("size", f"{report.size_bytes / 1e6:.1f} MB"),
            ("time", f"{report.seconds:.1f} s"), ("quantized ops", ops)]
    if report.calibration_images:
        digest = report.calibration_digest[:12]
        rows += [("calibration", f"{report.method}, {report.calibration_images} images, digest {digest}"),
                 ("calibration peak RSS", f"{report.calibration_peak_rss_mb} MB")]
    if accuracy is not None:
        rows += [("evaluated on", accuracy.source), ("pixel agreement", f"{accuracy.pixel_agreement:.4%}"),
                 ("agreement mIoU", f"{accuracy.agreement_miou:.4f}")]
        if accuracy.miou_float is not None:
            rows.append(("mIoU float -> quantized", f"{accuracy.miou_float:.4f} -> {accuracy.miou_quantized:.4f} "
                                                    f"({accuracy.miou_drop_points:+.2f} points drop)"))
        rows.append(("gate", f"{'pass' if accuracy.passed else 'FAIL'}: {accuracy.gate}"))
    if report.float_nodes:
        rows.append(("left in float", f"{len(report.float_nodes)} nodes"))
    rows += [("note", note) for note in report.notes]
    for key, value in rows:
        table.add_row(key, escape(str(value)))
    if report.sensitivity is not None:
        console.out.print(_sensitivity_table(report.sensitivity))
    console.out.print(table)


def _sensitivity_table(sensitivity) -> Table:
    table = Table(title=f"sensitivity: one group in float per trial, {sensitivity.images} images, "
                        f"{sensitivity.seconds:.1f} s", caption=f"all quantized: agreement mIoU "
                        f"{sensitivity.baseline_agreement_miou:.4f}")
    for column in ("rank", "group", "nodes", "agreement mIoU", "recovered", "kept float"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for rank, row in enumerate(sensitivity.rows, start=1):
        kept = "yes" if row.group in sensitivity.auto_excluded else ""
        table.add_row(str(rank), escape(row.group), str(row.nodes), f"{row.agreement_miou:.4f}",
                      f"{row.recovered:+.4f}", kept)
    return table
