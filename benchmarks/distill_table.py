"""Distillation table: teacher and students, val mIoU, ONNX Runtime latency fp32 and INT8, size.

Usage: python benchmarks/distill_table.py TEACHER.pt NAME=STUDENT.pt [NAME=STUDENT.pt ...]

Each checkpoint is exported (fp32 ONNX) and quantized (INT8, CPU target, the committed
balanced calibration manifest); all artifacts go through one `segdeploy bench` run on all
CamVid val images (2 threads, eval size, 100 timed calls each, blocks of 10), with the
teacher as the reference ("mIoU vs teacher" scores each model against the teacher's predictions). Writes
benchmarks/results/distill-<date>.json and the "distillation" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from common import checkpoint_parser, replace_section

from segdeploy.bench.recommend import MIN_GAIN, SAME_LATENCY, frontier
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.stage import quantize_onnx

HERE = Path(__file__).resolve().parent


def build(name: str, checkpoint: Path, folder: Path, data: str, manifest: Path) -> dict[str, Path]:
    fp32, int8 = folder / f"{name}.onnx", folder / f"{name}_int8.onnx"
    export_onnx(str(checkpoint), fp32, ExportConfig())
    quantize_onnx(fp32, int8, QuantConfig(precision="int8", target="cpu", calib=str(manifest), data_root=data,
                                          gate=AccuracyGate(max_miou_drop=100.0)))  # measure, do not gate
    return {"fp32": fp32, "int8": int8}


def main() -> None:
    parser = checkpoint_parser(__doc__.splitlines()[0])
    parser.add_argument("students", nargs="+", help="NAME=CHECKPOINT")
    args = parser.parse_args()
    models = {"teacher": args.checkpoint, **{s.split("=", 1)[0]: Path(s.split("=", 1)[1]) for s in args.students}}
    with tempfile.TemporaryDirectory() as scratch:
        artifacts = {name: build(name, path, Path(scratch), args.data, args.manifest) for name, path in models.items()}
        specs = tuple(f"{paths[kind]}@onnxruntime" for paths in artifacts.values() for kind in ("fp32", "int8"))
        report = bench_artifacts(BenchConfig(artifacts=specs, reference=str(args.checkpoint), data=args.data,
                                       iters=Budget(iterations=100), threads=2, device="cpu"))
    rows = {result.spec.path.stem: result for result in report.results}
    write_json(HERE / "results" / f"distill-{datetime.date.today().isoformat()}.json",
               {**report.to_dict(), "models": {name: str(path) for name, path in models.items()}})
    lines = ["## distillation", "",
             f"Command: `python benchmarks/distill_table.py {args.checkpoint} "
             + " ".join(args.students) + "`. ONNX Runtime, 2 threads, eval size, all CamVid val images; INT8 = "
             "CPU target; the last column is the mIoU of each model's predictions scored against the teacher's "
             "eager predictions.", "",
             "| model | checkpoint | val mIoU fp32 | val mIoU int8 | ORT fp32 ms (p50) | ORT int8 ms (p50) | "
             "ONNX MB fp32 / int8 | mIoU vs teacher (fp32) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, path in models.items():
        fp32, int8 = rows[name], rows[f"{name}_int8"]
        lines.append(f"| {name} | `{path.name}` | {fp32.accuracy.miou:.4f} | {int8.accuracy.miou:.4f} | "
                     f"{fp32.infer.p50:.1f} | {int8.infer.p50:.1f} | "
                     f"{fp32.size_mb:.1f} / {int8.size_mb:.1f} | {fp32.accuracy.miou_vs_reference:.4f} |")
    lines += ["", *frontier_lines(report)]
    section = "\n".join(lines) + "\n"
    replace_section(HERE / "RESULTS.md", "Benchmark suite results", "distillation", section)
    print(section)


def frontier_lines(report) -> list[str]:
    """The latency/accuracy frontier of every (model, precision) measured (segdeploy.bench.recommend)."""
    return [f"Most accurate choice per latency budget (ORT p50 on this machine, from the rows above; a choice "
            f"is listed only if it beats every faster one by at least {MIN_GAIN * 100:.1f} mIoU points, and "
            f"latencies within {SAME_LATENCY:.0%} count as equal):", "",
            *(f"- budget >= {choice.latency_ms:.1f} ms: {choice.result.spec.path.stem.replace('_int8', ' int8')} "
              f"(val mIoU {choice.score:.4f})" for choice in frontier(report))]


if __name__ == "__main__":
    main()
