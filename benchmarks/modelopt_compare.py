"""INT8 for TensorRT: segdeploy's ONNX Runtime-based quantizer vs NVIDIA ModelOpt, on accuracy.

Usage (ModelOpt lives in its own environment, see benchmarks/README.md):
    /tmp/movenv/bin/python benchmarks/modelopt_compare.py benchmarks/checkpoints/unet_small_camvid.pt

Both quantizers get the same calibration images (the committed balanced manifest) and the
same FP16 remainder; every artifact is scored on all CamVid val images through segdeploy's
ONNX Runtime backend and pre/post-processing. Writes benchmarks/results/modelopt-<model>-<date>.json
and a section of benchmarks/MODELOPT.md.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from common import checkpoint_parser, quantize_isolated, replace_section

from segdeploy.artifact_meta import read_metadata
from segdeploy.bench.machine import machine_info
from segdeploy.data.datasets import open_dataset, read_image
from segdeploy.data.preprocess import preprocess
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.metrics import Agreement, ConfusionMatrix
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.accuracy import predict_masks
from segdeploy.quantize.calibration import resolve_calibration
from segdeploy.quantize.config import AccuracyGate, QuantConfig

HERE = Path(__file__).resolve().parent
CALIBRATION_IMAGES = 96


def modelopt_int8(fp32: Path, out: Path, calibration: np.ndarray, method: str) -> float:
    """ModelOpt ONNX PTQ (INT8, FP16 remainder, CPU calibration); returns seconds."""
    from modelopt.onnx.quantization import quantize

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        quantize(str(fp32), quantize_mode="int8", calibration_data=calibration, calibration_method=method,
                 calibration_eps=["cpu"], high_precision_dtype="fp16", output_path=str(out), log_level="ERROR")
    return time.perf_counter() - started


def segdeploy_int8(fp32: Path, out: Path, manifest: Path, data: str, **options) -> float:
    """segdeploy's tensorrt-target INT8 (``options``: QuantConfig fields), timed; in its own process, as ModelOpt."""
    started = time.perf_counter()
    config = QuantConfig(precision="int8", target="tensorrt", calib=str(manifest), data_root=data,
                         num_images=CALIBRATION_IMAGES, gate=AccuracyGate(max_miou_drop=100.0), **options)
    report = quantize_isolated(fp32, out, config)
    if "error" in report:
        raise SystemExit(f"segdeploy quantize failed: {report['error']}")
    return time.perf_counter() - started


def score(paths: dict[str, Path], data: str) -> dict:
    dataset = open_dataset(data, "val")
    meta = read_metadata(load_onnx(paths["fp32"]))
    samples = [dataset[i] for i in range(len(dataset))]
    images = [sample.image for sample in samples]
    masks = {name: predict_masks(path, meta, images) for name, path in paths.items()}
    results = {}
    for name in paths:
        truth = ConfusionMatrix(meta.num_classes, dataset.ignore_index)
        agreement = Agreement(meta.num_classes, dataset.ignore_index)
        for sample, mask, reference in zip(samples, masks[name], masks["fp32"]):
            truth.update(mask, sample.mask)
            agreement.update(mask, reference, sample.mask)
        results[name] = {"val_miou": truth.miou(), "agreement_miou": agreement.miou}
    return results


def main() -> None:
    parser = checkpoint_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    import modelopt

    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        paths = {"fp32": folder / "fp32.onnx"}
        export_onnx(str(args.checkpoint), paths["fp32"], ExportConfig())
        meta = read_metadata(load_onnx(paths["fp32"]))
        files = resolve_calibration(str(args.manifest), CALIBRATION_IMAGES, 0, "random", args.data).files
        calibration = np.concatenate([preprocess(read_image(f), meta.preprocess)[0] for f in files])
        seconds = {}
        for method in ("max", "entropy"):
            name = f"modelopt-{method}"
            paths[name] = folder / f"{name}.onnx"
            seconds[name] = modelopt_int8(paths["fp32"], paths[name], calibration, method)
        for name, method in (("segdeploy-entropy", "entropy"), ("segdeploy-minmax", "minmax")):
            paths[name] = folder / f"{name}.onnx"
            seconds[name] = segdeploy_int8(paths["fp32"], paths[name], args.manifest, args.data, method=method)
        scores = score(paths, args.data)
    rows = {name: {**scores[name], "seconds": seconds.get(name)} for name in paths}
    machine = machine_info(2)
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"modelopt-{model}-{stamp}.json",
               {"machine": machine, "model": model, "modelopt": modelopt.__version__, "results": rows})
    lines = [f"## {model}", "", f"ModelOpt {modelopt.__version__}; {len(files)} calibration images; "
             "all CamVid val images; INT8 with FP16 remainder for both.", "",
             "| artifact | val mIoU | Δ points | agreement mIoU | quantize s |", "| --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        delta = (row["val_miou"] - rows["fp32"]["val_miou"]) * 100
        took = f"{row['seconds']:.1f}" if row["seconds"] else "-"
        lines.append(f"| {name} | {row['val_miou']:.4f} | {delta:+.2f} | {row['agreement_miou']:.4f} | {took} |")
    section = "\n".join(lines) + "\n"
    replace_section(HERE / "MODELOPT.md", "INT8 for TensorRT: segdeploy vs ModelOpt", model, section)
    print(section)


if __name__ == "__main__":
    main()
