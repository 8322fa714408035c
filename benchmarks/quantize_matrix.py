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
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import checkpoint_parser, replace_section

from segdeploy.artifact_meta import read_metadata
from segdeploy.bench.machine import machine_info
from segdeploy.bench.runner import BenchConfig, run_bench
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.onnx_graph import load_onnx

HERE = Path(__file__).resolve().parent
THREADS = 2
ROUNDS = 100  # timed infer calls per artifact and backend (the machine is shared: more samples)


def build_artifacts(checkpoint: Path, folder: Path, data: str, manifest: Path,
                    names: tuple[str, ...] | None = None) -> tuple[dict, dict]:
    """Every precision the checkpoint supports -> {name: path}, and {name: quantize report or error}.

    Each quantization runs as its own ``segdeploy quantize`` process, so the calibration peak
    RSS it reports is its own and not this script's (torch export, other artifacts).
    """
    paths, reports = {"fp32": folder / "fp32.onnx"}, {}
    export_onnx(str(checkpoint), paths["fp32"], ExportConfig())
    # Measure, do not gate: the gate thresholds are opened so every artifact is kept.
    common = ["--eval-data", data, "--eval-split", "val", "--max-miou-drop", "100", "--min-agreement", "0"]
    calib = ["--calib", str(manifest), "--data-root", data, "--num-images", "96"]
    jobs = {
        "fp16": ["--precision", "fp16"],
        "int8-cpu-u8": ["--precision", "int8", "--target", "cpu", *calib],
        "int8-cpu-s8": ["--precision", "int8", "--target", "cpu", "--cpu-activations", "s8", *calib],
        "int8-tensorrt": ["--precision", "int8", "--target", "tensorrt", *calib],  # FP16 remainder
        "int8-tensorrt-fp32": ["--precision", "int8", "--target", "tensorrt", "--high-precision", "fp32", *calib],
        "int8-tensorrt-auto2": ["--precision", "int8", "--target", "tensorrt", "--auto-exclude", "2",
                                "--sensitivity-images", "8", *calib],
        "int8-dynamic": ["--precision", "int8-dynamic", "--target", "cpu"],
    }
    for name, options in jobs.items():
        if names is not None and name not in names:
            continue
        out, summary = folder / f"{name}.onnx", folder / f"{name}.json"
        command = [sys.executable, "-m", "segdeploy", "--quiet", "quantize", str(paths["fp32"]), "-o", str(out),
                   "--json", str(summary), *options, *common]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode == 0:
            reports[name] = json.loads(summary.read_text())
            paths[name] = out
        else:
            reports[name] = {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
        print(f"{name}: {'built' if name in paths else reports[name]['error']}", flush=True)
    return paths, reports


def measure(paths: dict, checkpoint: Path, data: str) -> dict:
    """``segdeploy bench`` over every artifact on ONNX Runtime and OpenVINO f32, all CamVid val images.

    Returns {name: {"onnxruntime": result, "openvino": result}} of bench result dicts.
    """
    engines = [spec for path in paths.values() for spec in (f"{path}@onnxruntime", f"{path}@openvino:f32")]
    report = run_bench(BenchConfig(engines=tuple(engines), reference=str(checkpoint), data=data, num_images=1000,
                                   iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    by_path = {str(path): name for name, path in paths.items()}
    results: dict = {name: {} for name in paths}
    for result in report.results:
        results[by_path[result["artifact"]]][result["backend"]] = result
    return results


def markdown_section(model: str, rows: dict, machine: dict, eval_size) -> str:
    fp32 = rows["fp32"]["onnxruntime"]["latency_ms"]["infer"]["p50"]
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
        if ort["status"] != "ok":
            lines.append(f"| {name} | {ort['size_mb']:.1f} | failed: {ort['error']} | | | | | | |")
            continue
        ort_ms = ort["latency_ms"]["infer"]["p50"]
        ov_ms = ov["latency_ms"]["infer"]["p50"] if ov["status"] == "ok" else None
        lines.append(
            f"| {name} | {ort['size_mb']:.1f} | {ort_ms:.1f} | {ort_ms / fp32:.2f} | {_ms(ov_ms)} | "
            f"{ort['miou']:.4f} | {ort['delta_miou']:+.2f} | {ort['miou_vs_reference']:.4f} | "
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
    write_json(HERE / "results" / f"quantize-{model}-{stamp}.json",
               {"machine": machine, "model": model, "eval_size": list(eval_size), "results": rows, "reports": reports})
    section = markdown_section(model, rows, machine, eval_size)
    replace_section(HERE / "QUANTIZATION.md", "Quantization benchmark", model, section)
    print(section)


if __name__ == "__main__":
    main()
