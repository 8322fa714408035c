"""Bring your own model, end to end on third-party architectures (random weights, no downloads).

Usage: python benchmarks/byo.py [--data ../shared/data/camvid] [--images 20] [--iters 20]
Writes benchmarks/BYO.md and benchmarks/results/byo-<date>.json. Per model: export (or adopt) and its
verification, INT8 (cpu target, 32 CamVid train frames) and FP16 with their agreement against the fp32
model, a side-by-side bench on ONNX Runtime and OpenVINO (latency; agreement with the fp32 ONNX as
reference on CamVid val frames; mIoU means nothing with random weights and is not shown), one predict,
and the TensorRT build's validation (profile and metadata; TensorRT itself is not installed here).
Models: SegFormer MiT-b0 by --model-factory, the same SegFormer exported with plain torch.onnx.export
and adopted, and a DeepLabV3-style dict model (benchmarks/byo_models.py). All at CamVid's 11 classes,
eval size 360x480. Run from the repository root (the factories are imported from benchmarks/).
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from pathlib import Path

import torch
from common import replace_markdown_section

from segdeploy.bench.machine import machine_info
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.errors import SegdeployError
from segdeploy.export.adopt import AdoptConfig, adopt_onnx
from segdeploy.export.adopt_config import FactoryConfig, LabelConfig
from segdeploy.export.config import ExportConfig
from segdeploy.export.stage import export_model
from segdeploy.fileio import write_json
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.stage import quantize_onnx
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.trt.builder import BuildConfig, plan_build

HERE = Path(__file__).resolve().parent
SIZE = (360, 480)
LABELS = LabelConfig(classes="camvid", input_size=SIZE)
MODELS = {  # name -> (how it enters segdeploy, factory, factory args)
    "segformer-b0": ("factory", "benchmarks.byo_models:segformer", '{"num_labels": 11}'),
    "segformer-b0 (plain ONNX)": ("adopt", "benchmarks.byo_models:segformer", '{"num_labels": 11}'),
    "deeplab-like": ("factory", "benchmarks.byo_models:deeplab_like", '{"num_classes": 11, "width": 32}'),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=HERE.parent.parent / "shared" / "data" / "camvid")
    parser.add_argument("--images", type=int, default=20, help="CamVid val frames for agreement")
    parser.add_argument("--iters", type=int, default=20, help="timed calls per artifact")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, (path, factory, factory_args) in MODELS.items():
            print(f"== {name}", flush=True)
            rows.append(_one_model(name, path, factory, factory_args, Path(scratch), args))
    report = {"command": "python benchmarks/byo.py", "date": datetime.date.today().isoformat(),
              "machine": machine_info(), "size": list(SIZE), "images": args.images, "iters": args.iters,
              "models": rows}
    write_json(HERE / "results" / f"byo-{report['date']}.json", report)
    replace_markdown_section(HERE / "BYO.md", "# Bring your own model", render(report))
    print(render(report))
    return 0


def _one_model(name: str, path: str, factory: str, factory_args: str, scratch: Path, args) -> dict:
    stem = scratch / "".join(c if c.isalnum() or c == "-" else "_" for c in name)
    started = time.perf_counter()
    config = FactoryConfig(factory, factory_args, labels=LABELS)
    if path == "factory":
        exported = export_model(None, stem.with_suffix(".onnx"), ExportConfig(), factory=config).onnx
        entry = {"export_s": time.perf_counter() - started, "verification": [
            {"shape": list(c.shape), "max_abs": c.max_abs, "agreement": c.agreement}
            for c in exported.verification.cases]}
    else:
        entry = _plain_onnx_adopted(config, stem, started)
    fp32 = stem.with_suffix(".onnx")
    entry["stride"] = _stride(fp32)
    calib = QuantConfig(precision="int8", target="cpu", calib=str(args.data / "train"), num_images=32,
                        gate=AccuracyGate(min_agreement=0.0))
    entry["int8"] = _quantize(fp32, scratch / f"{stem.name}_int8.onnx", calib)
    entry["fp16"] = _quantize(fp32, scratch / f"{stem.name}_fp16.onnx",
                              QuantConfig(precision="fp16", gate=AccuracyGate(min_agreement=0.0)))
    specs = [str(fp32), f"{fp32}@openvino", str(scratch / f"{stem.name}_int8.onnx"),
             f"{scratch / f'{stem.name}_int8.onnx'}@openvino", str(scratch / f"{stem.name}_fp16.onnx")]
    bench = bench_artifacts(BenchConfig(artifacts=tuple(specs), reference=str(fp32), data=str(args.data),
                                        num_images=args.images, warmup=Budget(iterations=3),
                                        iters=Budget(iterations=args.iters)))
    entry["bench"] = [{"artifact": Path(r.spec.path).name, "backend": str(r.spec.backend), "error": r.error,
                       "infer_p50_ms": r.infer.p50 if r.infer else None,
                       "agreement": r.accuracy.agreement_vs_reference if r.accuracy else None}
                      for r in bench.results]
    with Segmenter(fp32) as segmenter:
        entry["predict_shape"] = list(segmenter.predict(_frame(args.data)).shape)
    _, _, profile = plan_build(fp32, BuildConfig())
    entry["build_profile"] = profile.describe()
    entry["name"], entry["path"] = name, path
    return entry


def _plain_onnx_adopted(config: FactoryConfig, stem: Path, started: float) -> dict:
    """What a user who was handed an .onnx has: torch.onnx.export (TorchScript exporter) outside segdeploy."""
    from segdeploy.export.factory import factory_model

    model, _ = factory_model(config)
    plain = stem.with_name(stem.name + "_plain.onnx")
    torch.onnx.export(model.eval(), (torch.zeros(1, 3, *SIZE),), str(plain), dynamo=False, opset_version=17,
                      input_names=["pixel_values"], output_names=["logits"],
                      dynamic_axes={"pixel_values": {0: "n", 2: "h", 3: "w"}, "logits": {0: "n", 2: "oh", 3: "ow"}})
    exported = time.perf_counter() - started
    report = adopt_onnx(plain, stem.with_suffix(".onnx"), AdoptConfig(LABELS))
    return {"export_s": exported, "adopt_s": report.seconds, "probes": report.probes}


def _stride(path: Path) -> int:
    from segdeploy.artifact_meta import read_onnx_meta

    return read_onnx_meta(path).io.output_stride


def _quantize(source: Path, out: Path, config: QuantConfig) -> dict:
    try:
        report = quantize_onnx(source, out, config)
    except SegdeployError as error:
        return {"error": str(error)}
    accuracy = report.accuracy
    return {"seconds": report.seconds, "agreement_miou": accuracy.agreement_miou,
            "pixel_agreement": accuracy.pixel_agreement, "runtime": accuracy.runtime}


def _frame(data: Path):
    import cv2

    return cv2.imread(str(sorted((data / "val").iterdir())[0]))


def render(report: dict) -> str:
    machine = report["machine"]
    lines = ["# Bring your own model", "",
             f"`python benchmarks/byo.py` ({report['date']}; {machine['cpu']}, {machine['cores']} cores, ISA "
             f"{machine['isa_class']}: {', '.join(machine['isa_flags'])}). Third-party architectures with random "
             f"weights (benchmarks/byo_models.py), CamVid's 11 classes, eval size {report['size'][0]}x"
             f"{report['size'][1]}. Agreement: pixel agreement with the fp32 ONNX on {report['images']} CamVid val "
             "frames (bench), or the quantizer's agreement mIoU against the float model on held-out frames. "
             f"Latency: infer p50 over {report['iters']} calls, artifacts interleaved in one run; it depends on "
             "the CPU. TensorRT is not installed here: the build ran up to its validation (profile, metadata).", "",
             "| model | into segdeploy | stride | export s | verify max abs | int8 agreement mIoU | "
             "fp16 agreement mIoU | build profile |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in report["models"]:
        verify = max((c["max_abs"] for c in row.get("verification", [])), default=None)
        lines.append(f"| {row['name']} | {row['path']} | {row['stride']} | {row['export_s']:.1f} | "
                     f"{'-' if verify is None else f'{verify:.1e}'} | {_agreement(row['int8'])} | "
                     f"{_agreement(row['fp16'])} | {row['build_profile']} |")
    lines += ["", "| model | artifact | backend | infer p50 ms | pixel agreement vs fp32 |",
              "| --- | --- | --- | --- | --- |"]
    for row in report["models"]:
        for result in row["bench"]:
            latency = "-" if result["infer_p50_ms"] is None else f"{result['infer_p50_ms']:.1f}"
            agreement = "-" if result["agreement"] is None else f"{result['agreement']:.4f}"
            lines.append(f"| {row['name']} | {result['artifact']} | {result['backend']} | {latency} | {agreement} |"
                         + (f" failed: {result['error']}" if result["error"] else ""))
    return "\n".join(lines) + "\n"


def _agreement(entry: dict) -> str:
    return f"failed: {entry['error'][:60]}" if "error" in entry else f"{entry['agreement_miou']:.4f}"


if __name__ == "__main__":
    sys.exit(main())
