"""The benchmark suite: one checkpoint -> every artifact -> one `segdeploy bench` table.

Usage: python benchmarks/suite.py benchmarks/checkpoints/unet_small_camvid.pt

Builds fp32 ONNX, fp16, int8 (cpu target), int8 (tensorrt target), int8-dynamic where it
applies (the same recipes as quantize_matrix.py) and the OpenVINO IR; then benchmarks eager
PyTorch, ONNX Runtime (every ONNX) and OpenVINO (IR with precision auto and f32, the cpu
INT8 ONNX with auto) at the eval size on all CamVid val images, 2 threads. Writes
benchmarks/results/<date>-<model>-<machine>.json and the model's section of
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import datetime
import re
import tempfile
from pathlib import Path

from common import checkpoint_parser, replace_section
from quantize_matrix import build_artifacts

from segdeploy.bench.report import markdown
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.openvino_ir import export_openvino
from segdeploy.fileio import write_json

HERE = Path(__file__).resolve().parent
THREADS = 2
SUITE_ARTIFACTS = ("fp16", "int8-cpu-u8", "int8-tensorrt", "int8-dynamic")


def main() -> None:
    parser = checkpoint_parser(__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=100)
    args = parser.parse_args()
    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths, reports = build_artifacts(args.checkpoint, folder, args.data, args.manifest, SUITE_ARTIFACTS)
        export_openvino(paths["fp32"], folder / "fp32.xml")
        specs = [str(args.checkpoint), *(f"{path}@onnxruntime" for path in paths.values()),
                 f"{folder / 'fp32.xml'}@openvino:auto", f"{folder / 'fp32.xml'}@openvino:f32"]
        if "int8-cpu-u8" in paths:
            specs.append(f"{paths['int8-cpu-u8']}@openvino:auto")
        report = bench_artifacts(BenchConfig(artifacts=tuple(specs), reference=str(args.checkpoint), data=args.data,
                                       iters=Budget(iterations=args.iters), threads=THREADS, device="cpu"))
    payload = report.to_dict()
    payload["quantize_reports"] = reports
    machine = re.sub(r"[^A-Za-z0-9]+", "-", report.machine["cpu"]).strip("-").lower()
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"{stamp}-{model}-{machine}.json", payload)
    section = (f"## {model}\n\nCommand: `python benchmarks/suite.py {args.checkpoint}`; "
               f"artifact names are the suite's (fp32, fp16, int8-cpu-u8 = INT8 for CPUs, int8-tensorrt = INT8 QDQ "
               f"with FP16 remainder for TensorRT, int8-dynamic).\n\n" + markdown(report))
    replace_section(HERE / "RESULTS.md", "Benchmark suite results", model, section)
    print(section)


if __name__ == "__main__":
    main()
