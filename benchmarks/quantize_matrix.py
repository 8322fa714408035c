"""Quantization matrix for one checkpoint: latency, agreement and val mIoU per precision.

Usage: python benchmarks/quantize_matrix.py benchmarks/checkpoints/unet_small_camvid.pt
Exports fp32, then fp16, int8 (cpu target, u8 and s8 activations), int8 (tensorrt target:
FP16 remainder, FP32 remainder, 2 most sensitive groups in float) and int8-dynamic where it
applies; runs `segdeploy bench` over all of them on ONNX Runtime and OpenVINO f32 (2 threads, eval
size, all CamVid val images).
Writes benchmarks/results/quantize-<model>-<date>.json and benchmarks/QUANTIZATION.md.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from common import checkpoint_parser, quantize_isolated, replace_section

from segdeploy.artifact_meta import read_metadata
from segdeploy.bench.machine import machine_info
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.config import AccuracyGate, QuantConfig

HERE = Path(__file__).resolve().parent
THREADS = 2
ROUNDS = 100  # timed infer calls per artifact and backend (the machine is shared: more samples)


def build_artifacts(checkpoint: Path, folder: Path, data: str, manifest: Path,
                    names: tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """Every precision the checkpoint supports -> {name: path}, and {name: quantize report or error}.

    Each quantization runs in its own process (``quantize_isolated``), so the calibration peak
    RSS it reports is its own and not this script's (torch export, other artifacts).
    """
    paths, reports = {"fp32": folder / "fp32.onnx"}, {}
    export_onnx(str(checkpoint), paths["fp32"], ExportConfig())
    # Measure, do not gate: the gate thresholds are opened so every artifact is kept.
    base = QuantConfig(gate=AccuracyGate(eval_data=data, eval_split="val", max_miou_drop=100.0, min_agreement=0.0))
    calib = {"calib": str(manifest), "data_root": data, "num_images": 96}
    jobs = {
        "fp16": base.replace(precision="fp16"),
        "int8-cpu-u8": base.replace(precision="int8", target="cpu", **calib),
        "int8-cpu-s8": base.replace(precision="int8", target="cpu", cpu_activations="s8", **calib),
        "int8-tensorrt": base.replace(precision="int8", target="tensorrt", **calib),  # FP16 remainder
        "int8-tensorrt-fp32": base.replace(precision="int8", target="tensorrt", high_precision="fp32", **calib),
        "int8-tensorrt-auto2": base.replace(precision="int8", target="tensorrt", auto_exclude=2,
                                            sensitivity_images=8, **calib),
        "int8-dynamic": base.replace(precision="int8-dynamic", target="cpu"),
    }
    for name, config in jobs.items():
        if names is not None and name not in names:
            continue
        out = folder / f"{name}.onnx"
        reports[name] = quantize_isolated(paths["fp32"], out, config)
        if "error" not in reports[name]:
            paths[name] = out
        print(f"{name}: {'built' if name in paths else reports[name]['error']}", flush=True)
    return paths, reports


def measure(paths: dict, checkpoint: Path, data: str) -> dict:
    """``segdeploy bench`` over every artifact on ONNX Runtime and OpenVINO f32, all CamVid val images.

    Returns {name: {"onnxruntime": BenchResult, "openvino": BenchResult}}.
    """
    specs = [spec for path in paths.values() for spec in (f"{path}@onnxruntime", f"{path}@openvino:f32")]
    report = bench_artifacts(BenchConfig(artifacts=tuple(specs), reference=str(checkpoint), data=data,
                                   iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    by_path = {str(path): name for name, path in paths.items()}
    results: dict = {name: {} for name in paths}
    for result in report.results:
        results[by_path[str(result.spec.path)]][result.spec.backend] = result
    return results


def markdown_section(model: str, rows: dict, machine: dict, eval_size) -> str:
    fp32 = rows["fp32"]["onnxruntime"].infer.p50
    lines = [f"## {model} (eval size {eval_size[0]}x{eval_size[1]})", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {THREADS} threads; `segdeploy bench`: {ROUNDS} "
             "timed infer calls per artifact in blocks of 10 after 2 settling calls, batch 1; mIoU and agreement "
             "(with the eager checkpoint) on all CamVid val images through ONNX Runtime. `x fp32` is ONNX Runtime "
             "latency relative to fp32 in the same run.", "",
             "| artifact | MB | ORT ms (p50) | x fp32 | OpenVINO f32 ms (p50) | val mIoU | Δ points | agreement mIoU "
             "| calib peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | - | - | - | - | - | - | - | {row['error']} |")
            continue
        ort, ov = row["onnxruntime"], row["openvino"]
        if not ort.ok:
            lines.append(f"| {name} | {ort.size_mb:.1f} | failed: {ort.error} | | | | | | |")
            continue
        ov_ms = ov.infer.p50 if ov.ok else None
        lines.append(
            f"| {name} | {ort.size_mb:.1f} | {ort.infer.p50:.1f} | {ort.infer.p50 / fp32:.2f} | {_ms(ov_ms)} | "
            f"{ort.accuracy.miou:.4f} | {ort.accuracy.delta_miou:+.2f} | {ort.accuracy.miou_vs_reference:.4f} | "
            f"{row.get('peak_rss_mb') or '-'} |")
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return f"{value:.1f}" if value else "failed"


def main() -> None:
    parser = checkpoint_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory() as scratch:
        paths, reports = build_artifacts(args.checkpoint, Path(scratch), args.data, args.manifest)
        eval_size = read_metadata(load_onnx(paths["fp32"])).preprocess.eval_size
        measured = measure(paths, args.checkpoint, args.data)
        rows = {"fp32": dict(measured["fp32"])}
        for name in reports:
            rows[name] = {"error": reports[name]["error"]} if "error" in reports[name] else {
                **measured[name], "peak_rss_mb": reports[name]["calibration_peak_rss_mb"]}
    machine = machine_info(THREADS)
    stamp = datetime.date.today().isoformat()
    serialised = {name: {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in row.items()}
                  for name, row in rows.items()}
    write_json(HERE / "results" / f"quantize-{model}-{stamp}.json",
               {"machine": machine, "model": model, "eval_size": list(eval_size), "results": serialised,
                "reports": reports})
    section = markdown_section(model, rows, machine, eval_size)
    replace_section(HERE / "QUANTIZATION.md", "Quantization benchmark", model, section)
    print(section)


if __name__ == "__main__":
    main()
