"""``segdeploy quantize MODEL.onnx --precision fp16|int8|int8-dynamic``: quantize with an accuracy gate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import JsonOpt
from segdeploy.data.calibration_set import Selection
from segdeploy.limits import SEED_MAX
from segdeploy.metadata import Precision
from segdeploy.quantize.config import (
    GATE_MIN_AGREEMENT,
    BiasCorrection,
    CalibrationMethod,
    CpuActivations,
    HighPrecision,
    IsaTarget,
    Target,
)


def register(app: typer.Typer) -> None:
    app.command("quantize")(quantize_command)


def _names(text: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (text or "").split(",") if part.strip())


def quantize_command(
    model: Annotated[Path, typer.Argument(help="An fp32 ONNX exported by segdeploy.")],
    precision: Annotated[Precision, typer.Option(help="fp16, int8 (calibrated QDQ) or int8-dynamic.")],
    output: Annotated[Path | None, typer.Option("-o", "--output",
                                                help="Output .onnx path (.xml for --target openvino).")] = None,
    target: Annotated[Target | None, typer.Option(
        help="tensorrt (int8 and fp16 default), cpu (QDQ ONNX for ONNX Runtime and OpenVINO) or openvino "
             "(IR quantized by NNCF).")] = None,
    calib: Annotated[str | None, typer.Option(
        help="Calibration images: a calibration set (.json), a dataset or split folder, or an image folder.")] = None,
    data_root: Annotated[Path | None, typer.Option(help="Where a calibration set's relative paths resolve.")] = None,
    num_images: Annotated[int, typer.Option(help="Calibration images (capped by what exists).")] = 96,
    select: Annotated[Selection, typer.Option(help="How calibration images are chosen.")] = Selection.RANDOM,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed for the calibration selection.")] = 0,
    method: Annotated[CalibrationMethod, typer.Option(help="Calibration method.")] = CalibrationMethod.ENTROPY,
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
    isa: Annotated[IsaTarget, typer.Option(
        help="cpu target: portable (7-bit weights, accurate on every x86 CPU) or native (8-bit where this CPU "
             "has VNNI/AMX; warns on other CPUs).")] = IsaTarget.PORTABLE,
    cpu_activations: Annotated[CpuActivations, typer.Option(
        help="cpu target: u8 (asymmetric) or s8 (symmetric).")] = CpuActivations.U8,
    high_precision: Annotated[HighPrecision, typer.Option(
        help="tensorrt target: remainder fp16 (ModelOpt) or fp32.")] = HighPrecision.FP16,
    bias_correction: Annotated[BiasCorrection, typer.Option(
        help="openvino target: NNCF's fast or full (slower) bias correction.")] = BiasCorrection.FAST,
    eval_data: Annotated[Path | None, typer.Option(help="Held-out dataset for the accuracy gate.")] = None,
    eval_split: Annotated[str | None, typer.Option(help="Split of --eval-data (default val).")] = None,
    eval_images: Annotated[int, typer.Option(help="At most this many evaluation images.")] = 50,
    max_miou_drop: Annotated[float, typer.Option(help="Gate with labels: mIoU drop in points.")] = 1.0,
    min_agreement: Annotated[float, typer.Option(help="Gate without labels: agreement mIoU.")] = GATE_MIN_AGREEMENT,
    json_path: JsonOpt = None,
) -> None:
    """Quantize an ONNX model; the result is checked on held-out images and gated."""
    from segdeploy.errors import BadInputError
    from segdeploy.quantize.config import AccuracyGate, QuantConfig
    from segdeploy.quantize.stage import quantize_onnx

    if model.is_dir():  # also "" (the current folder): no file name to derive the output's from
        raise BadInputError(f"{model} is a folder, not an ONNX file")

    gate = AccuracyGate(str(eval_data) if eval_data else None, eval_split, eval_images, max_miou_drop, min_agreement)
    config = QuantConfig(
        precision=precision, calib=calib, target=target, method=method, percentile=percentile,
        num_images=num_images, seed=seed, select=select, per_channel=per_channel,
        data_root=str(data_root) if data_root else None, exclude_nodes=_names(exclude_nodes),
        exclude_ops=_names(exclude_ops), exclude_modules=_names(exclude_modules), sensitivity=sensitivity,
        sensitivity_images=sensitivity_images, auto_exclude=auto_exclude, isa=isa, cpu_activations=cpu_activations,
        high_precision=high_precision, bias_correction=bias_correction, gate=gate,
    )

    def run():
        with console.progress_bars() as bar:
            return quantize_onnx(model, output, config, on_image=bar("calibrating"),
                                 on_group=bar("sensitivity (one group in float per trial)"))

    console.run_and_report(run, _print, json_path)


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
        method = report.method or "NNCF statistics"
        rows += [("calibration", f"{method}, {report.calibration_images} images, digest {digest}"),
                 ("calibration peak RSS", f"{report.calibration_peak_rss_mb} MB")]
    if accuracy is not None:
        rows += [("evaluated on", accuracy.source), ("pixel agreement", f"{accuracy.pixel_agreement:.4%}"),
                 ("agreement mIoU", f"{accuracy.agreement_miou:.4f}")]
        for measured in (accuracy, *accuracy.other_runtimes):
            label = f"mIoU on {measured.runtime}"
            if measured.miou_float is not None:
                rows.append((label, f"{measured.miou_float:.4f} -> {measured.miou_quantized:.4f} "
                                    f"({measured.miou_drop_points:+.2f} points drop)"))
            elif accuracy.other_runtimes:
                rows.append((label, f"agreement mIoU {measured.agreement_miou:.4f}"))
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
