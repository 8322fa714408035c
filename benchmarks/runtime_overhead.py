"""Segmenter overhead and end-to-end throughput per backend, for the committed U-Net checkpoint.

Usage: python benchmarks/runtime_overhead.py [benchmarks/checkpoints/unet_small_camvid.pt]

One run, backends (torch, onnxruntime, openvino f32) taking turns in blocks of 10 after 2
untimed settling calls (switching runtimes on every call times the other runtime's threads):
- overhead: the raw backend call vs ``Segmenter.run`` on the same prepared input;
- end to end: decode (cv2.imread of a CamVid val PNG) + prepare + backend + postprocess,
  each phase timed, images/s from their sum.
Writes benchmarks/results/runtime-<model>-<date>.json and benchmarks/RUNTIME.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from segdeploy.bench.machine import machine_info
from segdeploy.bench.passes import take_turns
from segdeploy.data.datasets import open_dataset
from segdeploy.data.preprocess import postprocess, prepare
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.export.openvino_ir import export_openvino
from segdeploy.fileio import atomic_write_text, write_json
from segdeploy.runtime.segmenter import Segmenter

HERE = Path(__file__).resolve().parent
THREADS = 2
ROUNDS = 40  # samples per measure and backend
BLOCK = 10  # backends take turns in blocks, after SETTLE untimed calls
SETTLE = 2
WARMUP = 3


def _timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, (time.perf_counter() - started) * 1000


def measure(segmenters: dict[str, Segmenter], image_paths: list[Path]) -> dict:
    """Per backend: lists of ms for raw, run, decode, prepare, infer, post."""
    meta = next(iter(segmenters.values())).meta
    batch, _ = prepare(cv2.imread(str(image_paths[0])), meta.preprocess, meta.io)
    samples = {name: {key: [] for key in ("raw", "run", "decode", "prepare", "infer", "post")} for name in segmenters}
    for segmenter in segmenters.values():
        for _ in range(WARMUP):
            segmenter.run(batch)

    def one_block(name: str) -> None:
        segmenter, record = segmenters[name], samples[name]
        start = len(record["decode"])
        for _ in range(SETTLE):  # let the previous runtime's threads go quiet
            segmenter.run(batch)
        for step in range(BLOCK):
            # alternate which of the pair goes first, so neither always gets the warmer cache
            pair = [("raw", segmenter.backend.infer), ("run", segmenter.run)]
            for key, call in pair if step % 2 == 0 else pair[::-1]:
                record[key].append(_timed(call, batch)[1])
        for step in range(BLOCK):
            image, ms = _timed(cv2.imread, str(image_paths[(start + step) % len(image_paths)]))
            record["decode"].append(ms)
            (prepared, placement), ms = _timed(prepare, image, meta.preprocess, meta.io)
            record["prepare"].append(ms)
            output, ms = _timed(segmenter.run, prepared)
            record["infer"].append(ms)
            record["post"].append(_timed(postprocess, output[0], placement)[1])

    take_turns(list(segmenters), one_block, lambda name: len(samples[name]["decode"]) < ROUNDS)
    return samples


def absolute_overhead_us(segmenters: dict[str, Segmenter], rounds: int = 400) -> dict[str, float]:
    """Median extra microseconds of ``Segmenter.run`` over the raw call, on a 32x32 input where the
    model itself takes well under a millisecond, so the wrapper's own cost is not lost in noise."""
    batch = np.zeros((1, 3, 32, 32), np.float32)
    result = {}
    for name, segmenter in segmenters.items():
        raw, run = [], []
        for index in range(rounds):
            pair = [(raw, segmenter.backend.infer), (run, segmenter.run)]
            for bucket, call in pair if index % 2 == 0 else pair[::-1]:
                bucket.append(_timed(call, batch)[1])
        result[name] = (statistics.median(run) - statistics.median(raw)) * 1000
    return result


def summarise(samples: dict) -> dict:
    rows = {}
    for name, record in samples.items():
        median = {key: statistics.median(values) for key, values in record.items()}
        quartiles = {key: np.percentile(values, [25, 75]).tolist() for key, values in record.items()}
        per_round_overhead = [run / raw - 1 for raw, run in zip(record["raw"], record["run"])]
        end_to_end = median["decode"] + median["prepare"] + median["infer"] + median["post"]
        rows[name] = {
            "median_ms": median, "iqr_ms": quartiles,
            "overhead": median["run"] / median["raw"] - 1,
            "overhead_iqr": np.percentile(per_round_overhead, [25, 75]).tolist(),
            "pre_post_share": (median["prepare"] + median["post"]) / end_to_end,
            "images_per_second": 1000 / end_to_end,
        }
    return rows


def markdown(model: str, rows: dict, machine: dict, eval_size, image_size) -> str:
    lines = [f"## {model} (eval size {eval_size[0]}x{eval_size[1]}, CamVid images {image_size[0]}x{image_size[1]})", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {THREADS} threads; {ROUNDS} samples per backend in "
             f"blocks of {BLOCK}; medians (IQR of the per-call overhead in brackets).", "",
             "| backend | raw call ms | Segmenter.run ms | overhead | overhead µs (32x32 input) | decode ms "
             "| prepare ms | post ms | pre+post share | images/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in rows.items():
        m, iqr = row["median_ms"], row["overhead_iqr"]
        lines.append(
            f"| {name} | {m['raw']:.2f} | {m['run']:.2f} | {row['overhead']:+.2%} [{iqr[0]:+.1%}, {iqr[1]:+.1%}] | "
            f"{row['overhead_us_32x32']:+.1f} | "
            f"{m['decode']:.2f} | {m['prepare']:.2f} | {m['post']:.2f} | {row['pre_post_share']:.1%} | "
            f"{row['images_per_second']:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, nargs="?", default=HERE / "checkpoints" / "unet_small_camvid.pt")
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "camvid"))
    args = parser.parse_args()
    model = args.checkpoint.stem
    dataset = open_dataset(args.data, "val")
    image_paths = [dataset.pairs[i][0] for i in range(8)]
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path, xml_path = Path(scratch) / "m.onnx", Path(scratch) / "m.xml"
        export_onnx(str(args.checkpoint), onnx_path, ExportConfig())
        export_openvino(onnx_path, xml_path)
        segmenters = {"torch": Segmenter(args.checkpoint, device="cpu", threads=THREADS),
                      "onnxruntime": Segmenter(onnx_path, threads=THREADS),
                      "openvino f32": Segmenter(xml_path, precision="f32", threads=THREADS)}
        with contextlib.ExitStack() as resources:
            for segmenter in segmenters.values():
                resources.enter_context(segmenter)
            samples = measure(segmenters, image_paths)
            absolute = absolute_overhead_us(segmenters)
    rows = summarise(samples)
    for name, microseconds in absolute.items():
        rows[name]["overhead_us_32x32"] = microseconds
    machine = machine_info(THREADS)
    meta = segmenters["onnxruntime"].meta
    image_size = cv2.imread(str(image_paths[0])).shape[:2]
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"runtime-{model}-{stamp}.json",
               {"machine": machine, "model": model, "rounds": ROUNDS, "results": rows, "samples_ms": samples})
    section = markdown(model, rows, machine, meta.preprocess.eval_size, image_size)
    header = ("# Runtime overhead and throughput\n\nCommand: `python benchmarks/runtime_overhead.py` (default: "
              "the committed unet_small checkpoint).\nTargets: Segmenter overhead <= 2 % of the raw backend call; "
              "prepare + postprocess <= 10 % of end-to-end time.\n\n")
    atomic_write_text(HERE / "RUNTIME.md", header + section)
    print(section)


if __name__ == "__main__":
    main()
