"""Agreement-gate calibration: what good and broken quantized artifacts score against their fp32 model.

Usage: python benchmarks/gate_calibration.py benchmarks/checkpoints/unet_small_camvid.pt [--images N]
Exports fp32 ONNX and builds every artifact of ARTIFACTS in a temporary folder, gates opened (measure, not
refuse). GOOD: fp16, int8 cpu (the default recipe), int8 tensorrt with FP16 and FP32 remainder, int8-dynamic
(models with MatMul/Gemm only). BROKEN: the cpu recipe with full 8-bit weights (wrong on CPUs without VNNI),
the FP16-remainder model under ONNX Runtime's full graph optimisation (what ran before the runtime fix), and
the int8 cpu model with one mid-network activation Q/DQ scale multiplied by 4 or by 0.25.
Each runs on ONNX Runtime over the first N CamVid val images (default all 101), against the fp32 ONNX's
ONNX Runtime prediction: pixel agreement, agreement mIoU (the gate's metric without labels), val mIoU, its drop
in points vs fp32 (the gate's metric with labels) and per-image pixel agreement; then, per metric, the
thresholds that pass every good artifact and refuse every broken one (max broken < threshold <= min good).
Writes benchmarks/results/gate-calibration-<model>-<isa_class>-<date>.json and a section of QUANTIZATION.md.
"""

from __future__ import annotations

import datetime
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from common import checkpoint_parser, replace_section
from int8_recipes import CALIB_IMAGES, METHOD, PERCENTILE, RECIPES, build
from onnx import numpy_helper

from segdeploy.artifact_meta import read_metadata
from segdeploy.bench.machine import machine_info
from segdeploy.data.datasets import open_dataset
from segdeploy.data.preprocess import postprocess, preprocess
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.fileio import write_json
from segdeploy.metadata import ArtifactMeta
from segdeploy.metrics import Agreement, ConfusionMatrix
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.accuracy import predict_masks
from segdeploy.quantize.calibration import collect_ranges, resolve_calibration
from segdeploy.quantize.config import AccuracyGate, QuantConfig
from segdeploy.quantize.dynamic import DYNAMIC_OPS
from segdeploy.quantize.stage import quantize_onnx

HERE = Path(__file__).resolve().parent
# One held-out image for quantize_onnx's own (opened) gate: the measurement below is this script's.
OPEN_GATE = AccuracyGate(eval_images=1, max_miou_drop=100.0, min_agreement=0.0)
METRICS = ("pixel_agreement", "agreement_miou")


@dataclass(frozen=True)
class Workspace:
    """The fp32 export and where artifacts are built; each artifact is built once and shared."""

    scratch: Path
    fp32: Path
    meta: ArtifactMeta
    manifest: Path
    data: str

    def quantize(self, name: str, **config) -> Path:
        out = self.scratch / f"{name}.onnx"
        if not out.exists():
            quantize_onnx(self.fp32, out, QuantConfig(gate=OPEN_GATE, **config))
        return out

    def int8(self, name: str, **config) -> Path:
        return self.quantize(name, precision="int8", calib=str(self.manifest), data_root=self.data, **config)


def fp16(ws: Workspace) -> Path:
    return ws.quantize("fp16", precision="fp16")


def int8_cpu(ws: Workspace) -> Path:
    return ws.int8("int8-cpu", target="cpu")


def int8_tensorrt_fp16(ws: Workspace) -> Path:
    return ws.int8("int8-tensorrt-fp16", target="tensorrt", high_precision="fp16")


def int8_tensorrt_fp32(ws: Workspace) -> Path:
    return ws.int8("int8-tensorrt-fp32", target="tensorrt", high_precision="fp32")


def int8_dynamic(ws: Workspace) -> Path | None:
    """None for conv-only models (quantize_dynamic refuses them: nothing to quantize)."""
    if not any(node.op_type in DYNAMIC_OPS for node in load_onnx(ws.fp32).graph.node):
        return None
    return ws.quantize("int8-dynamic", precision="int8-dynamic")


def unportable(ws: Workspace) -> Path:
    """The cpu recipe with full 8-bit weights (int8_recipes' u8s8), calibrated as QuantConfig's defaults do."""
    from onnxruntime.quantization import quant_pre_process
    from onnxruntime.quantization.calibrate import save_tensors_data

    scratch = ws.scratch / "unportable"
    scratch.mkdir()
    files = resolve_calibration(str(ws.manifest), CALIB_IMAGES, 0, "random", ws.data).files
    quant_pre_process(str(ws.fp32), str(scratch / "pre.onnx"), skip_symbolic_shape=True)
    ranges, _ = collect_ranges(scratch / "pre.onnx", files, ws.meta, METHOD, PERCENTILE, False)
    save_tensors_data(ranges, scratch / "ranges.json")
    recipe = next(recipe for recipe in RECIPES if recipe.name == "u8s8")
    build(recipe, scratch, {False: scratch / "ranges.json"}, scratch / "u8s8.onnx", ws.meta)
    return scratch / "u8s8.onnx"


def scale_middle_activation(model: onnx.ModelProto, factor: float) -> str:
    """Give the DequantizeLinears of the middle activation QuantizeLinear (graph order) a scale ``factor`` times
    the one it quantized with, in place (a wrong scale: the dequantized tensor is ``factor`` times too large);
    returns the quantized tensor's name."""
    nodes = model.graph.node
    initializers = {initializer.name: initializer for initializer in model.graph.initializer}
    quantize = [node for node in nodes if node.op_type == "QuantizeLinear" and node.input[0] not in initializers]
    chosen = quantize[len(quantize) // 2]
    wrong = numpy_helper.to_array(initializers[chosen.input[1]]) * np.float32(factor)
    model.graph.initializer.append(numpy_helper.from_array(wrong, chosen.input[1] + "_wrong"))
    for node in nodes:
        if node.op_type == "DequantizeLinear" and node.input[0] == chosen.output[0]:
            node.input[1] = chosen.input[1] + "_wrong"
    return chosen.input[0]


def scaled(factor: float) -> Callable[[Workspace], Path]:
    """The int8 cpu model with one mid-network activation dequantized at ``factor`` times its scale."""

    def builder(ws: Workspace) -> Path:
        model = onnx.load(str(int8_cpu(ws)))
        print(f"scale x{factor} on activation {scale_middle_activation(model, factor)}", flush=True)
        out = ws.scratch / f"int8-cpu-scale-x{factor}.onnx"
        onnx.save(model, str(out))
        return out

    return builder


def segdeploy_ort(path: Path, meta: ArtifactMeta, images: list) -> list[np.ndarray]:
    """As segdeploy's gate and runtime run it (graph optimisation off for models with FP16 Q/DQ scales)."""
    return predict_masks(path, meta, images, "onnxruntime")


def ort_enable_all(path: Path, meta: ArtifactMeta, images: list) -> list[np.ndarray]:
    """ONNX Runtime with its full graph optimisation whatever the model (the runtime before its fix)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    masks = []
    for image in images:
        batch, placement = preprocess(image, meta.preprocess)
        masks.append(postprocess(session.run(None, {name: batch})[0][0], placement))
    return masks


@dataclass(frozen=True)
class Artifact:
    name: str
    kind: str  # "good" or "broken"
    build: Callable[[Workspace], Path | None]  # None: does not apply to this model
    run: Callable[[Path, ArtifactMeta, list], list[np.ndarray]] = segdeploy_ort
    runtime: str = "onnxruntime (segdeploy)"


ARTIFACTS = (
    Artifact("fp16", "good", fp16),
    Artifact("int8 cpu", "good", int8_cpu),
    Artifact("int8 tensorrt, FP16 remainder", "good", int8_tensorrt_fp16),
    Artifact("int8 tensorrt, FP32 remainder", "good", int8_tensorrt_fp32),
    Artifact("int8-dynamic", "good", int8_dynamic),
    Artifact("unportable (cpu, 8-bit weights)", "broken", unportable),
    Artifact("fp16-scale optimiser (tensorrt FP16 remainder)", "broken", int8_tensorrt_fp16, ort_enable_all,
             "onnxruntime ORT_ENABLE_ALL"),
    Artifact("wrong scale x4 (int8 cpu)", "broken", scaled(4.0)),
    Artifact("wrong scale x0.25 (int8 cpu)", "broken", scaled(0.25)),
)


def score(masks: list, reference: list, samples: list, meta: ArtifactMeta) -> dict:
    """Agreement with ``reference`` (the fp32 prediction) and val mIoU on the labels, as the gate counts them."""
    ignore = meta.ignore_index if meta.ignore_index is not None else 255
    agreement, truth = Agreement(meta.num_classes, ignore), ConfusionMatrix(meta.num_classes, ignore)
    per_image = [agreement.update(mask, expected, label) for mask, expected, (_, label) in
                 zip(masks, reference, samples)]
    for mask, (_, label) in zip(masks, samples):
        truth.update(mask, label)
    return {"pixel_agreement": agreement.pixel, "agreement_miou": agreement.miou, "val_miou": truth.miou(),
            "per_image_pixel_agreement": [round(value, 6) for value in per_image],
            "per_image_min": float(np.nanmin(per_image)), "per_image_median": float(np.nanmedian(per_image))}


def measure(ws: Workspace, samples: list) -> tuple[float, list[dict]]:
    """fp32 val mIoU and one row per artifact (``skipped`` where it does not apply)."""
    images = [image for image, _ in samples]
    reference = segdeploy_ort(ws.fp32, ws.meta, images)
    fp32_miou = score(reference, reference, samples, ws.meta)["val_miou"]
    rows = []
    for artifact in ARTIFACTS:
        row, started = {"name": artifact.name, "kind": artifact.kind, "runtime": artifact.runtime}, time.perf_counter()
        path = artifact.build(ws)
        if path is None:
            rows.append({**row, "skipped": "no MatMul/Gemm (conv-only model)"})
            continue
        row |= score(artifact.run(path, ws.meta, images), reference, samples, ws.meta)
        rows.append({**row, "drop_points": 100 * (fp32_miou - row["val_miou"])})
        print(f"{artifact.name}: agreement mIoU {row['agreement_miou']:.4f} "
              f"({time.perf_counter() - started:.0f} s to build and measure)", flush=True)
    return fp32_miou, rows


def separation(rows: list[dict]) -> dict[str, dict]:
    """Per metric: (max over broken, min over good); thresholds in (low, high] separate when low < high."""
    measured = [row for row in rows if "skipped" not in row]
    result = {}
    for metric in METRICS:
        low = max(row[metric] for row in measured if row["kind"] == "broken")
        high = min(row[metric] for row in measured if row["kind"] == "good")
        result[metric] = {"max_broken": low, "min_good": high, "separates": low < high}
    return result


def section(key: str, command: str, machine: dict, held_out: str, fp32_miou: float, rows: list[dict],
            split: dict[str, dict]) -> str:
    lines = [f"## {key} (agreement gate calibration, {datetime.date.today()})", "",
             f"`{command}`", "",
             f"Machine: {machine['cpu']}, ISA class {machine['isa_class']}, flags "
             f"{', '.join(machine['isa_flags']) or 'none'}. Every artifact on ONNX Runtime as segdeploy runs it "
             "(the fp16-scale optimiser row: with ORT_ENABLE_ALL) over "
             f"{held_out}, against the fp32 ONNX's ONNX Runtime prediction (fp32 val mIoU {fp32_miou:.4f}); "
             "`drop` = fp32 val mIoU - artifact val mIoU in points (the gate's measure with labels).", "",
             "| artifact | good/broken | pixel agreement | agreement mIoU | val mIoU | drop points "
             "| per-image pixel agreement min / median |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        if "skipped" in row:
            lines.append(f"| {row['name']} | {row['kind']} | skipped: {row['skipped']} | | | | |")
            continue
        lines.append(f"| {row['name']} | {row['kind']} | {row['pixel_agreement']:.4f} | {row['agreement_miou']:.4f} "
                     f"| {row['val_miou']:.4f} | {row['drop_points']:.2f} | {row['per_image_min']:.4f} / "
                     f"{row['per_image_median']:.4f} |")
    lines.append("")
    for metric, bounds in split.items():
        interval = (f"threshold in ({bounds['max_broken']:.6f}, {bounds['min_good']:.6f}]" if bounds["separates"]
                    else f"none: distributions overlap (max broken {bounds['max_broken']:.6f} >= min good "
                         f"{bounds['min_good']:.6f})")
        lines.append(f"- {metric.replace('_', ' ')} separating good from broken: {interval}")
    return "\n".join(lines) + "\n"


def held_out_samples(data: str, count: int | None) -> tuple[str, list]:
    dataset = open_dataset(data, "val")
    samples = [dataset[i] for i in range(min(count or len(dataset), len(dataset)))]
    return f"{len(samples)} CamVid val images", [(sample.image, sample.mask) for sample in samples]


def main() -> None:
    parser = checkpoint_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="first N val images (default: all)")
    args = parser.parse_args()
    model, machine = args.checkpoint.stem, machine_info()
    held_out, samples = held_out_samples(args.data, args.images)
    with tempfile.TemporaryDirectory(prefix="gate-calibration.") as scratch:
        fp32 = Path(scratch) / "fp32.onnx"
        export_onnx(str(args.checkpoint), fp32, ExportConfig())
        ws = Workspace(Path(scratch), fp32, read_metadata(load_onnx(fp32), str(fp32)), args.manifest, args.data)
        fp32_miou, rows = measure(ws, samples)
    split, command = separation(rows), shlex.join(["python", *sys.argv])
    key = f"gate-calibration-{model}-{machine['isa_class']}"
    write_json(HERE / "results" / f"{key}-{datetime.date.today()}.json",
               {"model": model, "command": command, "machine": machine, "held_out": held_out,
                "fp32_val_miou": fp32_miou, "rows": rows, "separation": split})
    markdown = section(key, command, machine, held_out, fp32_miou, rows, split)
    replace_section(HERE / "QUANTIZATION.md", "Quantization", key, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
