"""Dynamic INT8 weight recipes side by side: why int8-dynamic stores uint8 weights.

Usage: python benchmarks/dynamic_int8_weights.py benchmarks/checkpoints/swin_seg_nano_camvid.pt
Exports fp32, quantizes its MatMul/Gemm dynamically with int8 weights, int8 weights with
``reduce_range`` (7-bit) and uint8 weights (segdeploy's default), and benches the four on
ONNX Runtime (2 threads, eval size, every CamVid val image) in one run: latency, val mIoU,
agreement with the eager checkpoint. Results depend on the CPU's ISA (recorded): without
VNNI, uint8 x int8 products saturate at int16.
Writes benchmarks/results/dynamic-int8-<model>-<isa>-<date>.json and a section of QUANTIZATION.md.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

from common import checkpoint_parser, replace_section

from segdeploy.artifact_meta import attach_metadata, read_metadata
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.dynamic import DYNAMIC_OPS, quantize_dynamic

HERE = Path(__file__).resolve().parent
THREADS = 2
ROUNDS = 100


def ort_int8_weights(fp32: Path, out: Path, reduce_range: bool) -> Path:
    """ONNX Runtime's dynamic quantization with int8 weights, segdeploy metadata copied over."""
    import onnx
    from onnxruntime.quantization import QuantType
    from onnxruntime.quantization import quantize_dynamic as ort_quantize_dynamic

    ort_quantize_dynamic(fp32, out, op_types_to_quantize=list(DYNAMIC_OPS), per_channel=True,
                         weight_type=QuantType.QInt8, reduce_range=reduce_range)
    onnx.save(attach_metadata(onnx.load(out), read_metadata(load_onnx(fp32))), out)
    return out


def main() -> None:
    args = checkpoint_parser(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="dyn-int8.") as scratch:
        folder = Path(scratch)
        fp32 = folder / "fp32.onnx"
        export_onnx(str(args.checkpoint), fp32, ExportConfig())
        open_gate = QuantConfig(gate=AccuracyGate(min_agreement=0.0, max_miou_drop=100.0))
        paths = {"fp32": fp32,
                 "int8 weights": ort_int8_weights(fp32, folder / "s8.onnx", reduce_range=False),
                 "int8 weights, reduce_range": ort_int8_weights(fp32, folder / "s8r.onnx", reduce_range=True),
                 "uint8 weights (default)": Path(quantize_dynamic(fp32, folder / "u8.onnx", open_gate).output)}
        report = bench_artifacts(BenchConfig(artifacts=tuple(f"{path}@onnxruntime" for path in paths.values()),
                                       reference=str(args.checkpoint), data=args.data,
                                       iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    results = dict(zip(paths, report.results))
    model = args.checkpoint.stem
    isa = report.machine["isa_class"]
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"dynamic-int8-{model}-{isa}-{stamp}.json",
               {"machine": report.machine, "model": model,
                "results": {name: result.to_dict() for name, result in results.items()}})
    base = results["fp32"].infer.p50
    key = f"dynamic-int8-{model}-{isa}"  # one section per model and ISA class: both kinds of machine stay
    lines = [f"## {key} (dynamic INT8 weight types; {report.machine['cpu']}, flags "
             f"{' '.join(report.machine['isa_flags']) or 'none'}, {stamp})", "",
             f"`python benchmarks/dynamic_int8_weights.py benchmarks/checkpoints/{model}.pt` (ONNX Runtime, "
             f"{THREADS} threads, eval size, {len(report.images)} val images, {ROUNDS} timed calls each, one run)", "",
             "| weights | p50 ms | x fp32 | val mIoU | pixel agreement vs eager |", "| --- | --- | --- | --- | --- |"]
    for name, result in results.items():
        p50 = result.infer.p50
        lines.append(f"| {name} | {p50:.1f} | {p50 / base:.2f} | {result.accuracy.miou:.4f} | "
                     f"{result.accuracy.agreement_vs_reference:.4f} |")
    replace_section(HERE / "QUANTIZATION.md", "Quantization", key, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
