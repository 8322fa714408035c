"""Long-run stability: 10,000 Segmenter.predict calls per CPU backend, resident memory every 250.

Usage: python benchmarks/soak.py [--calls 10000] [--size 120x160]
Model: the committed unet_small checkpoint (torch) and its ONNX (onnxruntime) and IR
(openvino f32), on one 120x160 CamVid-sized synthetic image resized by the model's policy.
Memory is the process's current RSS (/proc/self/statm); the slope is a least-squares fit of
RSS against calls after the first 1,000 (warm-up allocations excluded), in KB per 1,000 calls;
growth compares the medians of the first and last quarter of those samples.
Writes benchmarks/results/soak-<date>.json and benchmarks/SOAK.md up to its first "## " section (the
"SegmenterPool under load" section there is pool_soak.py's and is kept).
"""

from __future__ import annotations

import argparse
import datetime
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import replace_markdown_section

from segdeploy.bench.machine import machine_info
from segdeploy.data.synthetic import make_scenes
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.export.openvino_ir import export_openvino
from segdeploy.fileio import write_json
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.sizes import parse_hw

HERE = Path(__file__).resolve().parent
EVERY = 250
SKIP = 1000


def rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def soak(segmenter: Segmenter, image: np.ndarray, calls: int) -> dict:
    expected = segmenter.predict(image)
    points, started, mismatches = [], time.perf_counter(), 0
    for call in range(1, calls + 1):
        mismatches += int(not np.array_equal(segmenter.predict(image), expected))
        if call % EVERY == 0:
            points.append((call, rss_mb()))
    calls_axis, memory = np.array(points).T
    keep = calls_axis > SKIP
    settled = memory[keep]
    slope = np.polyfit(calls_axis[keep], settled, 1)[0] * 1000 * 1000  # KB per 1,000 calls
    quarter = max(1, len(settled) // 4)
    # Medians of the first and last quarter: the allocator's RSS swings by several MB between
    # samples (eager torch especially), so last-minus-first would report a swing as growth.
    growth = np.median(settled[-quarter:]) - np.median(settled[:quarter])
    return {"rss_mb": [[int(c), float(m)] for c, m in points], "slope_kb_per_1000_calls": float(slope),
            "rss_growth_mb_after_warmup": float(growth), "rss_swing_mb": float(settled.max() - settled.min()),
            "mismatches": mismatches, "seconds": time.perf_counter() - started}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--size", default="120x160")
    parser.add_argument("--checkpoint", type=Path, default=HERE / "checkpoints" / "unet_small_camvid.pt")
    args = parser.parse_args()
    image = make_scenes(1, *parse_hw(args.size), seed=1)[0][0]
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        onnx_path, xml_path = Path(scratch) / "m.onnx", Path(scratch) / "m.xml"
        export_onnx(str(args.checkpoint), onnx_path, ExportConfig(verify=False))
        export_openvino(onnx_path, xml_path)
        for name, segmenter in (("torch", Segmenter(args.checkpoint, device="cpu", threads=2)),
                                ("onnxruntime", Segmenter(onnx_path, threads=2)),
                                ("openvino f32", Segmenter(xml_path, precision="f32", threads=2))):
            with segmenter:
                results[name] = soak(segmenter, image, args.calls)
            print(name, {k: v for k, v in results[name].items() if k != "rss_mb"}, flush=True)
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"soak-{stamp}.json", {"machine": machine_info(2), "calls": args.calls,
                                                         "image": args.size, "results": results})
    lines = ["# Soak: memory over long runs", "",
             f"Command: `python benchmarks/soak.py` ({args.calls} `Segmenter.predict` calls per backend, one "
             f"{args.size} image, unet_small at its eval size 240x320, 2 threads). RSS sampled every {EVERY} calls; "
             f"slope fitted and growth measured after the first {SKIP} (growth: median of the last quarter of "
             "samples minus median of the first quarter; swing: max minus min of those samples).", "",
             f"| backend | RSS at call {EVERY}, MB | RSS at the end, MB | growth after 1,000 calls MB "
             "| swing MB | slope KB/1,000 calls "
             "| wrong masks | seconds |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, row in results.items():
        lines.append(f"| {name} | {row['rss_mb'][0][1]:.1f} | {row['rss_mb'][-1][1]:.1f} | "
                     f"{row['rss_growth_mb_after_warmup']:+.2f} | {row['rss_swing_mb']:.1f} | "
                     f"{row['slope_kb_per_1000_calls']:+.1f} | "
                     f"{row['mismatches']} | {row['seconds']:.0f} |")
    replace_markdown_section(HERE / "SOAK.md", lines[0], "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
