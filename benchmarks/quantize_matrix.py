"""Quantization matrix for one checkpoint: latency, agreement and val mIoU per precision.

Usage: python benchmarks/quantize_matrix.py benchmarks/checkpoints/unet_small_camvid.pt
Exports fp32, then fp16, int8 (cpu target, u8 and s8 activations), int8 (tensorrt target:
FP16 remainder, FP32 remainder, 2 most sensitive groups in float), int8 for OpenVINO (IR by NNCF)
and int8-dynamic where it applies; runs `segdeploy bench` over all of them on ONNX Runtime and
OpenVINO f32 (an IR on OpenVINO only; 2 threads, eval size, all CamVid val images).
Writes benchmarks/results/quantize-<model>-<isa_class>-<date>.json and the section
`<model>-<isa_class>` of benchmarks/QUANTIZATION.md (sections of other CPU classes stay).
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
        "int8-openvino": base.replace(precision="int8", target="openvino", **calib),
        "int8-dynamic": base.replace(precision="int8-dynamic", target="cpu"),
    }
    for name, config in jobs.items():
        if names is not None and name not in names:
            continue
        out = folder / (f"{name}.xml" if jobs[name].target == "openvino" else f"{name}.onnx")
        reports[name] = quantize_isolated(paths["fp32"], out, config)
        if "error" not in reports[name]:
            paths[name] = out
        print(f"{name}: {'built' if name in paths else reports[name]['error']}", flush=True)
    return paths, reports


def measure(paths: dict, checkpoint: Path, data: str) -> dict:
    """``segdeploy bench`` over every artifact on ONNX Runtime and OpenVINO f32, all CamVid val images.

    Returns {name: {"onnxruntime": BenchResult, "openvino": BenchResult}}.
    """
    specs = [spec for path in paths.values() for spec in (f"{path}@onnxruntime", f"{path}@openvino:f32")
             if path.suffix == ".onnx" or spec.endswith("openvino:f32")]
    report = bench_artifacts(BenchConfig(artifacts=tuple(specs), reference=str(checkpoint), data=data,
                                   iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    by_path = {str(path): name for name, path in paths.items()}
    results: dict = {name: {} for name in paths}
    for result in report.results:
        results[by_path[str(result.spec.path)]][result.spec.backend] = result
    return results


def markdown_section(title: str, rows: dict, machine: dict, eval_size) -> str:
    fp32 = rows["fp32"]
    lines = [f"## {title} (eval size {eval_size[0]}x{eval_size[1]}; {datetime.date.today()})", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, ISA flags {', '.join(machine['isa_flags'])}, "
             f"{THREADS} threads; `segdeploy bench`: {ROUNDS} timed infer calls per artifact in blocks of 10 after 2 "
             "settling calls, batch 1; mIoU and agreement (with the eager checkpoint) on all CamVid val images "
             "through ONNX Runtime (the IR through OpenVINO). `x fp32`: latency relative to fp32 on the same "
             "runtime in the same run.", "",
             "| artifact | MB | ORT ms (p50) | x fp32 | OpenVINO f32 ms (p50) | x fp32 | val mIoU | Δ points "
             "| agreement mIoU | calib peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        if "error" in row:
            lines.append(f"| {name} | - | - | - | - | - | - | - | - | {row['error']} |")
            continue
        ort, ov = row.get("onnxruntime"), row.get("openvino")
        scored = ort if ort is not None else ov
        if not scored.ok:
            lines.append(f"| {name} | {scored.size_mb:.1f} | failed: {scored.error} | | | | | | | |")
            continue
        lines.append(
            f"| {name} | {scored.size_mb:.1f} | {_latency(ort, fp32['onnxruntime'])} | "
            f"{_latency(ov, fp32['openvino'])} | {scored.accuracy.miou:.4f} | {scored.accuracy.delta_miou:+.2f} | "
            f"{scored.accuracy.miou_vs_reference:.4f} | {row.get('peak_rss_mb') or '-'} |")
    return "\n".join(lines) + "\n"


def _latency(result, fp32) -> str:
    """``p50 | x fp32`` cells; ``- | -`` where the artifact does not run on that runtime."""
    if result is None:
        return "- | -"
    if not result.ok or not fp32.ok:
        return "failed | -"
    return f"{result.infer.p50:.1f}{'*' if result.infer.noisy else ''} | {result.infer.p50 / fp32.infer.p50:.2f}"


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
    stamp, title = datetime.date.today().isoformat(), f"{model}-{machine['isa_class']}"
    serialised = {name: {key: value.to_dict() if hasattr(value, "to_dict") else value for key, value in row.items()}
                  for name, row in rows.items()}
    write_json(HERE / "results" / f"quantize-{title}-{stamp}.json",
               {"machine": machine, "model": model, "eval_size": list(eval_size), "results": serialised,
                "reports": reports})
    section = markdown_section(title, rows, machine, eval_size)
    replace_section(HERE / "QUANTIZATION.md", "Quantization benchmark", title, section)
    print(section)


if __name__ == "__main__":
    main()
