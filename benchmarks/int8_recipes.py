"""CPU INT8 recipes side by side: which stays accurate on a CPU without VNNI, and what each costs in speed.

Usage: python benchmarks/int8_recipes.py benchmarks/checkpoints/unet_small_camvid.pt
Exports fp32 ONNX, pre-processes it once and collects entropy ranges once per activation symmetry
(96 images of calibration/camvid_train_100_balanced.json), then builds every recipe of RECIPES from those
ranges with ONNX Runtime's quantize_static as segdeploy's cpu target does (QDQ, per-channel weights,
Conv/ConvTranspose/MatMul/Gemm; `-data` recipes also MaxPool/Concat/Pad/Slice/Relu/Resize). One
`segdeploy bench` run times and scores fp32 and every recipe on ONNX Runtime and OpenVINO f32 (2 threads,
eval size, 100 timed calls, all CamVid val images).
Writes benchmarks/results/int8-recipes-<model>-<isa_class>-<date>.json (the bench report, machine included)
and the Markdown table to benchmarks/results/int8-recipes-<model>-<isa_class>-<date>.md.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
from common import checkpoint_parser

from segdeploy.artifact_meta import attach_metadata, read_metadata
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import atomic_write_text, write_json
from segdeploy.metadata import Precision
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.calibration import calibration_method, collect_ranges, resolve_calibration
from segdeploy.quantize.int8 import CPU_DATA_OPS, WEIGHTED_OPS

HERE = Path(__file__).resolve().parent
THREADS, ROUNDS, CALIB_IMAGES, METHOD, PERCENTILE = 2, 100, 96, "entropy", 99.999
RUNTIMES = (("onnxruntime", "onnxruntime"), ("openvino", "openvino:f32"))  # (backend, spec suffix)


@dataclass(frozen=True)
class Recipe:
    name: str
    symmetric_activations: bool  # s8 symmetric activations (False: u8 asymmetric)
    weights: str  # "s8" or "u8" (symmetric, per channel)
    reduce_range: bool = False  # 7-bit weights on every quantized layer
    first_conv_7bit: bool = False  # 7-bit weights on the first Conv only (NNCF's default overflow fix)
    data_ops: bool = False  # Q/DQ on MaxPool/Concat/Pad/Slice/Relu/Resize too (CPU_DATA_OPS)
    per_channel: bool = True  # weight scales per output channel (False: one per tensor)


RECIPES = (
    Recipe("u8s8", False, "s8"),  # the cpu default before the portable one
    Recipe("u8s8-rr", False, "s8", reduce_range=True),
    Recipe("u8s8-rr-data", False, "s8", reduce_range=True, data_ops=True),  # today's cpu default
    Recipe("u8s8-rr-first", False, "s8", first_conv_7bit=True),
    Recipe("u8u8", False, "u8"),
    Recipe("s8s8", True, "s8"),
    Recipe("s8s8-rr", True, "s8", reduce_range=True),
    Recipe("s8s8-rr-data", True, "s8", reduce_range=True, data_ops=True),
)


def calibrate(fp32: Path, scratch: Path, manifest: Path, data: str, images: int = CALIB_IMAGES) -> dict[bool, Path]:
    """Pre-process once; ranges once per activation symmetry on ``images`` images -> {symmetric: ranges file}."""
    from onnxruntime.quantization import quant_pre_process
    from onnxruntime.quantization.calibrate import save_tensors_data

    meta = read_metadata(load_onnx(fp32), str(fp32))
    files = resolve_calibration(str(manifest), images, 0, "random", data).files
    quant_pre_process(str(fp32), str(scratch / "pre.onnx"), skip_symbolic_shape=True)
    paths = {}
    for symmetric in (False, True):
        ranges, peak = collect_ranges(scratch / "pre.onnx", files, meta, METHOD, PERCENTILE, symmetric)
        paths[symmetric] = scratch / f"ranges-{'s8' if symmetric else 'u8'}.json"
        save_tensors_data(ranges, paths[symmetric])
        print(f"calibrated {len(files)} images, symmetric={symmetric}, peak RSS {peak:.0f} MB", flush=True)
    return paths


def first_conv_weight(model: onnx.ModelProto) -> str:
    """The weight initializer of the first Conv in graph order (the graph is topologically sorted)."""
    return next(node.input[1] for node in model.graph.node if node.op_type == "Conv")


def build(recipe: Recipe, scratch: Path, ranges: dict[bool, Path], out: Path, meta) -> None:
    """Quantize the pre-processed model with the saved ranges as ``_Recipe.build`` does for the cpu target."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    pre = scratch / "pre.onnx"
    extra = {"ActivationSymmetric": recipe.symmetric_activations, "WeightSymmetric": True, "QuantizeBias": True}
    if recipe.first_conv_7bit:
        extra["TensorQuantOverrides"] = {first_conv_weight(onnx.load(str(pre))): [{"reduce_range": True}]}
    with contextlib.redirect_stdout(io.StringIO()):
        quantize_static(
            str(pre), str(out), None, quant_format=QuantFormat.QDQ,
            op_types_to_quantize=[*WEIGHTED_OPS, *(CPU_DATA_OPS if recipe.data_ops else ())],
            per_channel=recipe.per_channel, reduce_range=recipe.reduce_range,
            activation_type=QuantType.QInt8 if recipe.symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QUInt8 if recipe.weights == "u8" else QuantType.QInt8,
            calibrate_method=calibration_method(METHOD), extra_options=extra,
            calibration_cache_path=str(ranges[recipe.symmetric_activations]))
    model = onnx.load(str(out))
    record = {"recipe": recipe.name, **asdict(recipe), "method": METHOD, "calib_images": CALIB_IMAGES}
    onnx.save(attach_metadata(model, meta.replace(precision=Precision.INT8).with_record("int8_recipe", **record)),
              str(out))


def build_all(checkpoint: Path, scratch: Path, manifest: Path, data: str) -> dict[str, Path]:
    """fp32 and every recipe -> {name: path}; a recipe that fails to build is reported and left out."""
    paths = {"fp32": scratch / "fp32.onnx"}
    export_onnx(str(checkpoint), paths["fp32"], ExportConfig())
    meta = read_metadata(load_onnx(paths["fp32"]), str(paths["fp32"]))
    ranges = calibrate(paths["fp32"], scratch, manifest, data)
    for recipe in RECIPES:
        out = scratch / f"{recipe.name}.onnx"
        try:
            build(recipe, scratch, ranges, out, meta)
            paths[recipe.name] = out
            print(f"built {recipe.name}", flush=True)
        except Exception as error:  # a benchmark reports a failed recipe, goes on
            print(f"FAILED to build {recipe.name}: {type(error).__name__}: {error}", flush=True)
    return paths


def measure(paths: dict[str, Path], checkpoint: Path, data: str):
    """One bench run over every artifact on both runtimes -> (report, {(name, backend): BenchResult})."""
    specs = [f"{path}@{suffix}" for path in paths.values() for _, suffix in RUNTIMES]
    report = bench_artifacts(BenchConfig(artifacts=tuple(specs), reference=str(checkpoint), data=data,
                                         iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    names = {str(path): name for name, path in paths.items()}
    return report, {(names[str(result.spec.path)], str(result.spec.backend)): result for result in report.results}


def table(model: str, report, results: dict, names: list[str]) -> str:
    """Markdown: recipe x runtime with p50, cv, ratio and speedup vs fp32 on that runtime, mIoU and agreement."""
    machine = report.machine
    lines = [f"## {model}: CPU INT8 recipes on {machine['isa_class']} ({machine['cpu']})", "",
             f"ISA flags: {', '.join(machine['isa_flags'])}; {THREADS} threads, batch 1, eval size, {ROUNDS} timed "
             f"infer calls per row in blocks, one run; mIoU on {len(report.images)} CamVid val images. `x fp32` = "
             "p50 / fp32 p50 on the same runtime (speedup = its inverse); `drop` = points vs fp32 on the same "
             "runtime; agreement vs the eager checkpoint. `*`: noisy latency (cv > 0.05, shared machine).", "",
             "| recipe | runtime | p50 ms | cv | x fp32 | speedup | val mIoU | drop vs fp32 | agreement mIoU "
             "| pixel agreement |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        for backend, _ in RUNTIMES:
            lines.append(row(name, backend, results.get((name, backend)), results.get(("fp32", backend))))
    return "\n".join(lines) + "\n"


def row(name: str, backend: str, result, fp32) -> str:
    if result is None or not result.ok:
        return f"| {name} | {backend} | failed: {result.error if result else 'not built'} | | | | | | | |"
    stats, acc = result.infer, result.accuracy
    base_ok = fp32 is not None and fp32.ok
    ratio = stats.p50 / fp32.infer.p50 if base_ok else float("nan")
    drop = 100 * (acc.miou - fp32.accuracy.miou) if base_ok else float("nan")
    return (f"| {name} | {backend} | {stats.p50:.1f}{'*' if stats.noisy else ''} | {stats.cv:.3f} | {ratio:.2f} | "
            f"{1 / ratio:.2f}x | {acc.miou:.4f} | {drop:+.2f} | {acc.miou_vs_reference:.4f} | "
            f"{acc.agreement_vs_reference:.4f} |")


def main() -> None:
    args = checkpoint_parser(__doc__.splitlines()[0]).parse_args()
    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory(prefix="int8-recipes.") as scratch:
        paths = build_all(args.checkpoint, Path(scratch), args.manifest, args.data)
        report, results = measure(paths, args.checkpoint, args.data)
    stem = HERE / "results" / f"int8-recipes-{model}-{report.machine['isa_class']}-{datetime.date.today()}"
    write_json(stem.with_suffix(".json"), {"model": model, "machine": report.machine,
                                           "recipes": [asdict(recipe) for recipe in RECIPES],
                                           "built": sorted(paths), "bench": report.to_dict()})
    markdown = table(model, report, results, list(paths) + [r.name for r in RECIPES if r.name not in paths])
    atomic_write_text(stem.with_suffix(".md"), markdown)
    print(markdown)


if __name__ == "__main__":
    main()
