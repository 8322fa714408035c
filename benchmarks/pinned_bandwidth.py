"""Host-to-device bandwidth, pinned vs pageable host memory (needs an NVIDIA GPU and cuda-python).

Usage: python benchmarks/pinned_bandwidth.py
Copies 1x3x360x480 float32 (2.1 MB, one CamVid frame) and 4x3x720x960 (33 MB) buffers 50 times
each on one stream, timed with CUDA events; writes benchmarks/results/pinned-<date>.json and
prints a Markdown table. Pageable buffers are plain numpy arrays (the driver stages them).
"""

from __future__ import annotations

import datetime
import statistics
from pathlib import Path

import numpy as np

from segdeploy.bench.machine import machine_info
from segdeploy.cuda import cuda_api
from segdeploy.fileio import write_json

HERE = Path(__file__).resolve().parent
SHAPES = ((1, 3, 360, 480), (4, 3, 720, 960))
REPEATS = 50


def bandwidth_gbps(cuda, host: np.ndarray, pointer: int, stream) -> float:
    start, end = cuda.event_create(), cuda.event_create()
    samples = []
    for _ in range(REPEATS):
        cuda.event_record(start, stream)
        cuda.copy_to_device(pointer, host, host.nbytes, stream)
        cuda.event_record(end, stream)
        samples.append(cuda.event_elapsed_ms(start, end))
    return host.nbytes / (statistics.median(samples) / 1000) / 1e9


def main() -> None:
    cuda = cuda_api()
    stream = cuda.stream_create()
    rows = []
    for shape in SHAPES:
        pinned = cuda.pinned_empty(shape, np.float32)
        pageable = np.empty(shape, np.float32)
        pointer = cuda.device_alloc(pinned.nbytes)
        rows.append({"shape": list(shape), "megabytes": pinned.nbytes / 1e6,
                     "pinned_gbps": bandwidth_gbps(cuda, pinned, pointer, stream),
                     "pageable_gbps": bandwidth_gbps(cuda, pageable, pointer, stream)})
        cuda.device_free(pointer)
        cuda.free_pinned(pinned)
    gpu, _ = cuda.device_name_and_capability()
    write_json(HERE / "results" / f"pinned-{datetime.date.today().isoformat()}.json",
               {"machine": machine_info(), "gpu": gpu, "cuda": cuda.name, "results": rows})
    print(f"{gpu}, {cuda.name}\n")
    print("| buffer | MB | pinned GB/s | pageable GB/s | ratio |\n| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {'x'.join(map(str, row['shape']))} | {row['megabytes']:.1f} | {row['pinned_gbps']:.1f} | "
              f"{row['pageable_gbps']:.1f} | {row['pinned_gbps'] / row['pageable_gbps']:.2f} |")


if __name__ == "__main__":
    main()
