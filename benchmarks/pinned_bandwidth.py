"""Host-to-device bandwidth, pinned vs pageable host memory, through every CUDA layer segdeploy uses
(needs an NVIDIA GPU; part of ``scripts/gpu-check``).

Usage: python benchmarks/pinned_bandwidth.py [--out benchmarks]
Layers: cuda-python and PyCUDA through ``segdeploy.cuda`` (the TensorRT backend's), and torch
(``pin_memory=True`` tensors and ``copy_(non_blocking=True)``, the torch backend's); each that is
installed. Buffers: 1x3x360x480 float32 (2.1 MB, one CamVid frame), 8x3x360x480 (16.6 MB, the GPU
bench's batch) and 4x3x720x960 (33 MB); 50 copies each on one non-default stream, median of CUDA
event timings. Pageable buffers are plain numpy arrays / tensors (the driver stages them).
Writes OUT/results/pinned-<date>.json and its section of OUT/GPU.md, and prints the table. Without a
GPU: one line on stderr, exit 4.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import statistics
import sys
from pathlib import Path

import numpy as np
from common import replace_markdown_section

from segdeploy.bench.machine import machine_info
from segdeploy.errors import MissingDependencyError
from segdeploy.fileio import write_json

HERE = Path(__file__).resolve().parent
SHAPES = ((1, 3, 360, 480), (8, 3, 360, 480), (4, 3, 720, 960))
REPEATS = 50


def cuda_layer_gbps(cuda, shape: tuple[int, ...]) -> tuple[float, float]:
    """(pinned, pageable) GB/s through a ``segdeploy.cuda`` API object."""
    stream = cuda.stream_create()
    start, end = cuda.event_create(), cuda.event_create()
    pinned, pageable = cuda.pinned_empty(shape, np.float32), np.ones(shape, np.float32)
    pointer = cuda.device_alloc(pinned.nbytes)
    try:
        rates = []
        for host in (pinned, pageable):
            samples = []
            for _ in range(REPEATS):
                cuda.event_record(start, stream)
                cuda.copy_to_device(pointer, host, host.nbytes, stream)
                cuda.event_record(end, stream)
                samples.append(cuda.event_elapsed_ms(start, end))
            rates.append(host.nbytes / (statistics.median(samples) / 1000) / 1e9)
        return rates[0], rates[1]
    finally:
        cuda.device_free(pointer)
        cuda.free_pinned(pinned)
        cuda.event_destroy(start)
        cuda.event_destroy(end)
        cuda.stream_destroy(stream)


def torch_gbps(shape: tuple[int, ...]) -> tuple[float, float]:
    """(pinned, pageable) GB/s of ``device.copy_(host, non_blocking=True)`` on a side stream."""
    import torch

    device = torch.empty(shape, device="cuda")
    stream = torch.cuda.Stream()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    rates = []
    for host in (torch.ones(shape, pin_memory=True), torch.ones(shape)):
        samples = []
        with torch.cuda.stream(stream):
            for _ in range(REPEATS):
                start.record()
                device.copy_(host, non_blocking=True)
                end.record()
                end.synchronize()
                samples.append(start.elapsed_time(end))
        rates.append(host.numel() * 4 / (statistics.median(samples) / 1000) / 1e9)
    return rates[0], rates[1]


def layers() -> list[tuple[str, object]]:
    """(name, measure(shape) -> (pinned, pageable)) for each installed layer that can reach a GPU."""
    from segdeploy.cuda import cuda_api

    found = []
    for name in ("cuda-python", "pycuda"):
        try:
            api = cuda_api(name)
        except MissingDependencyError:
            continue
        found.append((name, lambda shape, api=api: cuda_layer_gbps(api, shape)))
    if importlib.util.find_spec("torch"):
        import torch

        if torch.cuda.is_available():
            found.append(("torch", torch_gbps))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    measured = layers()
    if not measured:
        print("pinned_bandwidth: no CUDA layer reaches a GPU here (cuda-python, pycuda, torch); run it on a GPU "
              "machine", file=sys.stderr)
        return 4
    rows = []
    for shape in SHAPES:
        for name, measure in measured:
            pinned, pageable = measure(shape)
            rows.append({"layer": name, "shape": list(shape), "megabytes": int(np.prod(shape)) * 4 / 1e6,
                         "pinned_gbps": pinned, "pageable_gbps": pageable})
    machine, date = machine_info(), datetime.date.today().isoformat()
    (args.out / "results").mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results" / f"pinned-{date}.json",
               {"command": "python benchmarks/pinned_bandwidth.py", "date": date, "machine": machine,
                "repeats": REPEATS, "results": rows})
    section = markdown(rows, machine, date)
    replace_markdown_section(args.out / "GPU.md", SECTION, section)
    print(section)
    return 0


SECTION = "## Pinned vs pageable host-to-device copies"


def markdown(rows: list[dict], machine: dict, date: str) -> str:
    lines = [SECTION, "",
             f"{', '.join(machine['gpu']) or 'GPU'}; host {machine['cpu']}. {date}. Command: "
             f"`python benchmarks/pinned_bandwidth.py` (run by `bash scripts/gpu-check`). Median of {REPEATS} "
             "H2D copies per cell, timed with CUDA events on one non-default stream.", "",
             "| layer | buffer | MB | pinned GB/s | pageable GB/s | pinned/pageable |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['layer']} | {'x'.join(map(str, row['shape']))} | {row['megabytes']:.1f} | "
                     f"{row['pinned_gbps']:.1f} | {row['pageable_gbps']:.1f} | "
                     f"{row['pinned_gbps'] / row['pageable_gbps']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
