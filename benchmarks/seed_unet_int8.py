"""Q/DQ placements for the classic U-Net (`unet` preset, base 64, 31 M parameters) at 256x256 on CPU runtimes.

Usage: python benchmarks/seed_unet_int8.py
The seed's INT8 of this model ran at 0.64x the fp32 speed on ONNX Runtime (Q/DQ on weighted ops
only). This exports the preset (seeded random weights: speed and agreement with fp32 are what
count here, not mIoU) at 256x256, calibrates once per activation symmetry on 32 images of
calibration/camvid_train_100_balanced.json, builds the placements of PLACEMENTS with the same
builder as benchmarks/int8_recipes.py, and times fp32 and every placement side by side in one
`segdeploy bench` run on ONNX Runtime and OpenVINO f32 (2 threads, 30 timed calls each); pixel
agreement with the fp32 ONNX on 8 CamVid val images.
Writes benchmarks/results/seed-unet-int8-<isa_class>-<date>.json and its section of QUANTIZATION.md.
"""

from __future__ import annotations

import datetime
import tempfile
from pathlib import Path

import numpy as np
import torch
from common import HERE, data_parser, replace_section
from int8_recipes import Recipe, build, calibrate

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.data.datasets import open_dataset
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.quantize.accuracy import predict_masks

SIZE, THREADS, ROUNDS, CALIB_IMAGES, AGREEMENT_IMAGES = (256, 256), 2, 30, 32, 8
RUNTIMES = ("onnxruntime", "openvino:f32")
PLACEMENTS = (
    Recipe("weighted ops only (the seed's placement)", False, "s8", reduce_range=True),
    Recipe("+ MaxPool/Concat/Pad/Slice/Relu/Resize (cpu default)", False, "s8", reduce_range=True, data_ops=True),
    Recipe("+ data ops, s8s8", True, "s8", reduce_range=True, data_ops=True),
    Recipe("+ data ops, per-tensor weights", False, "s8", reduce_range=True, data_ops=True, per_channel=False),
)


def build_all(scratch: Path, manifest: Path, data: str) -> dict[str, Path]:
    torch.manual_seed(0)
    paths = {"fp32": scratch / "fp32.onnx"}
    export_onnx("unet", paths["fp32"], ExportConfig(input_size=SIZE))
    meta = read_artifact_meta(paths["fp32"])
    ranges = calibrate(paths["fp32"], scratch, manifest, data, CALIB_IMAGES)
    for index, recipe in enumerate(PLACEMENTS):
        paths[recipe.name] = scratch / f"placement{index}.onnx"
        build(recipe, scratch, ranges, paths[recipe.name], meta)
        print(f"built {recipe.name}", flush=True)
    return paths


def agreement(paths: dict[str, Path], data: str) -> dict[tuple[str, str], float]:
    """Pixel agreement of every placement with the fp32 ONNX, on each runtime."""
    meta = read_artifact_meta(paths["fp32"])
    val = open_dataset(data, "val")
    images = [val[index].image for index in range(AGREEMENT_IMAGES)]
    reference = np.stack(predict_masks(paths["fp32"], meta, images))
    return {(name, runtime.split(":")[0]): float(np.mean(np.stack(predict_masks(
        path, meta, images, runtime.split(":")[0])) == reference)) for name, path in paths.items()
        for runtime in RUNTIMES}


def main() -> None:
    args = data_parser(__doc__.splitlines()[0]).parse_args()
    with tempfile.TemporaryDirectory(prefix="seed-unet.") as scratch:
        paths = build_all(Path(scratch), args.manifest, args.data)
        report = bench_artifacts(BenchConfig(
            artifacts=tuple(f"{path}@{runtime}" for path in paths.values() for runtime in RUNTIMES),
            input_sizes=(SIZE,), iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
        agreements = agreement(paths, args.data)
    names = {str(path): name for name, path in paths.items()}
    results = {(names[str(result.spec.path)], str(result.spec.backend)): result for result in report.results}
    title = f"seed-unet-int8-{report.machine['isa_class']}"
    write_json(HERE / "results" / f"{title}-{datetime.date.today()}.json",
               {"machine": report.machine, "bench": report.to_dict(),
                "pixel_agreement": [{"placement": name, "runtime": runtime, "value": value}
                                    for (name, runtime), value in agreements.items()]})
    section = markdown(title, report, results, agreements, list(paths))
    replace_section(HERE / "QUANTIZATION.md", "Quantization benchmark", title, section)
    print(section)


def markdown(title: str, report, results: dict, agreements: dict, names: list[str]) -> str:
    machine = report.machine
    lines = [f"## {title} (classic U-Net preset at 256x256, INT8 placements; {machine['cpu']}, "
             f"{datetime.date.today()})", "",
             f"`python benchmarks/seed_unet_int8.py`. ISA flags: {', '.join(machine['isa_flags'])}; {THREADS} threads, "
             f"batch 1, {ROUNDS} timed calls per row in turns, one run; random seeded weights: this is about speed "
             f"(the pixel agreement with the fp32 ONNX on {AGREEMENT_IMAGES} CamVid val images only shows nothing "
             "broke; an untrained model predicts few classes). All INT8 rows: 7-bit per-channel weights unless stated, "
             "entropy ranges. `*`: noisy latency (cv > 0.05).", "",
             "| placement | runtime | p50 ms | x fp32 | speedup | pixel agreement |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name in names:
        for runtime in RUNTIMES:
            backend = runtime.split(":")[0]
            result, fp32 = results.get((name, backend)), results.get(("fp32", backend))
            if result is None or not result.ok:
                lines.append(f"| {name} | {backend} | failed: {result.error if result else 'missing'} | | | |")
                continue
            ratio = result.infer.p50 / fp32.infer.p50
            lines.append(f"| {name} | {backend} | {result.infer.p50:.1f}{'*' if result.infer.noisy else ''} | "
                         f"{ratio:.2f} | {1 / ratio:.2f}x | {agreements[(name, backend)]:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
