"""Quantization matrix for one checkpoint: latency, agreement and val mIoU per precision.

Usage: python benchmarks/quantize_matrix.py benchmarks/checkpoints/unet_small_camvid.pt
Exports fp32, then fp16, int8 (cpu target, u8 and s8 activations), int8 (tensorrt target:
FP16 remainder, FP32 remainder, 2 most sensitive groups in float) and int8-dynamic where it
applies; times ONNX Runtime and OpenVINO on the CPU at the eval size (2 threads, artifacts
interleaved round by round) and scores every artifact on CamVid val.
Writes benchmarks/results/quantize-<model>-<date>.json and benchmarks/QUANTIZATION.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from segdeploy.bench.machine import machine_info
from segdeploy.bench.metrics import ConfusionMatrix
from segdeploy.data.datasets import open_dataset
from segdeploy.data.preprocess import postprocess, preprocess
from segdeploy.errors import SegdeployError
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import atomic_write_text, write_json
from segdeploy.onnx_meta import load_onnx, read_metadata
from segdeploy.runtime.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.runtime.openvino_backend import OpenVinoBackend

HERE = Path(__file__).resolve().parent
THREADS = 2
ROUNDS = 20


def build_artifacts(checkpoint: Path, folder: Path, data: str, manifest: Path) -> tuple[dict, dict]:
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


def time_backends(paths: dict, size: tuple[int, int]) -> dict:
    """Median/p90 ms per (artifact, backend); one call each per round, artifacts interleaved."""
    batch = np.random.default_rng(0).standard_normal((1, 3, *size)).astype(np.float32)
    runners = {}
    for name, path in paths.items():
        runners[(name, "onnxruntime")] = OnnxRuntimeBackend(path, threads=THREADS)
        runners[(name, "openvino")] = OpenVinoBackend(path, precision="f32", threads=THREADS)
    samples, errors = {key: [] for key in runners}, {}
    for key, runner in list(runners.items()):
        try:
            runner.activate()
            for _ in range(3):
                runner.infer(batch)  # warm-up
        except SegdeployError as error:
            errors[key] = str(error)
            runners.pop(key)
    for _ in range(ROUNDS):
        for key, runner in runners.items():
            started = time.perf_counter()
            runner.infer(batch)
            samples[key].append((time.perf_counter() - started) * 1000)
    for runner in runners.values():
        runner.close()
    return {f"{name}@{backend}": ({"median_ms": statistics.median(samples[(name, backend)]),
                                   "p90_ms": float(np.percentile(samples[(name, backend)], 90))}
                                  if (name, backend) not in errors else {"error": errors[(name, backend)]})
            for name, backend in samples}


def score(paths: dict, data: str) -> dict:
    """Val mIoU vs ground truth and agreement with fp32 (ONNX Runtime), all val images."""
    dataset = open_dataset(data, "val")
    meta = read_metadata(load_onnx(paths["fp32"]))
    truth = {name: ConfusionMatrix(meta.num_classes, dataset.ignore_index) for name in paths}
    agree = {name: ConfusionMatrix(meta.num_classes, dataset.ignore_index) for name in paths}
    runners = {name: OnnxRuntimeBackend(path, threads=THREADS).activate() for name, path in paths.items()}
    for index in range(len(dataset)):
        sample = dataset[index]
        batch, placement = preprocess(sample.image, meta.preprocess)
        masks = {name: postprocess(runner.infer(batch)[0], placement) for name, runner in runners.items()}
        for name, mask in masks.items():
            truth[name].update(mask, sample.mask)
            agree[name].update(mask, np.where(sample.mask == dataset.ignore_index, dataset.ignore_index, masks["fp32"]))
    return {name: {"val_miou": truth[name].miou(), "agreement_miou": agree[name].miou()} for name in paths}


def markdown_section(model: str, rows: dict, machine: dict, eval_size) -> str:
    fp32 = rows["fp32"]["latency"].get("fp32@onnxruntime", {}).get("median_ms")
    lines = [f"## {model} (eval size {eval_size[0]}x{eval_size[1]})", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {THREADS} threads; median of {ROUNDS} "
             "interleaved rounds, batch 1. `x fp32` is ONNX Runtime latency relative to fp32 in the same run.", "",
             "| artifact | MB | ORT ms (p50) | x fp32 | OpenVINO f32 ms (p50) | val mIoU | Δ points "
             "| agreement mIoU | calib peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | - | - | - | - | - | - | - | {row['error']} |")
            continue
        ort_ms = row["latency"].get(f"{name}@onnxruntime", {}).get("median_ms")
        ov_ms = row["latency"].get(f"{name}@openvino", {}).get("median_ms")
        delta = (row["val_miou"] - rows["fp32"]["val_miou"]) * 100
        lines.append(
            f"| {name} | {row['size_mb']:.1f} | {_ms(ort_ms)} | {ort_ms / fp32:.2f} | {_ms(ov_ms)} | "
            f"{row['val_miou']:.4f} | {delta:+.2f} | {row['agreement_miou']:.4f} | {row.get('peak_rss_mb') or '-'} |"
            if ort_ms else f"| {name} | {row['size_mb']:.1f} | failed | - | {_ms(ov_ms)} | - | - | - | - |")
    return "\n".join(lines) + "\n"


def _ms(value) -> str:
    return f"{value:.1f}" if value else "failed"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "camvid"))
    parser.add_argument("--manifest", type=Path, default=HERE.parent / "calibration" / "camvid_train_100_balanced.json")
    args = parser.parse_args()
    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory() as scratch:
        paths, reports = build_artifacts(args.checkpoint, Path(scratch), args.data, args.manifest)
        eval_size = read_metadata(load_onnx(paths["fp32"])).preprocess.eval_size
        latency = time_backends(paths, eval_size)
        scores = score(paths, args.data)
        rows = {"fp32": {"size_mb": paths["fp32"].stat().st_size / 1e6}}
        for name in reports:
            rows[name] = {"error": reports[name]["error"]} if "error" in reports[name] else {
                "size_mb": paths[name].stat().st_size / 1e6, "peak_rss_mb": reports[name]["calibration_peak_rss_mb"]}
        for name in paths:
            rows[name].update(scores[name], latency={k: v for k, v in latency.items() if k.startswith(name + "@")})
    machine = machine_info(THREADS)
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"quantize-{model}-{stamp}.json",
               {"machine": machine, "model": model, "eval_size": list(eval_size), "results": rows, "reports": reports})
    section = markdown_section(model, rows, machine, eval_size)
    target = HERE / "QUANTIZATION.md"
    previous = target.read_text() if target.exists() else "# Quantization benchmark\n\n"
    kept = [part for part in previous.split("\n## ") if not part.startswith(f"{model} ")]
    atomic_write_text(target, "\n## ".join(kept).rstrip() + "\n\n" + section)
    print(section)


if __name__ == "__main__":
    main()
