"""Does distillation beat training from scratch on the synthetic scenes? Paired runs over seeds.

Usage: python benchmarks/distill_synthetic.py [--seeds 6]

A unet_nano teacher is trained on synthetic scenes (train 32, val 24 images of 64x80, the
test fixture's training set); then unet_tiny students are trained from scratch and distilled
with the same seed, schedule and batches, for each (epochs, kd weight, temperature) setting.
Val mIoU per seed, the paired differences and the number of seeds where the distilled student
wins go to benchmarks/results/distill-synthetic-<date>.json and the "distillation-synthetic"
section of benchmarks/RESULTS.md. One torch thread; takes ~5 minutes on the 2-core machine.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import replace_section

from segdeploy.bench.machine import machine_info
from segdeploy.data.datasets import open_dataset
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.fileio import write_json
from segdeploy.models.checkpoint import load_model
from segdeploy.train.trainer import TrainConfig, evaluate, train_model

HERE = Path(__file__).resolve().parent
SIZE = (64, 80)
SETTINGS = ((8, 1.0, 1.0), (16, 1.0, 1.0), (16, 0.5, 2.0))  # (student epochs, kd weight, temperature)


def val_miou(checkpoint: Path, data: Path) -> float:
    model, meta = load_model(checkpoint)
    return evaluate(model, open_dataset(str(data), "val"), meta.preprocess).miou()


def fit(data: Path, arch: str, output: Path, epochs: int, seed: int, **distill) -> float:
    train_model(TrainConfig(data=str(data), arch=arch, output=str(output), input_size=SIZE, epochs=epochs, batch=4,
                      lr=1e-2, seed=seed, threads=1, val_split=None, **distill))
    return val_miou(output, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = write_synthetic_dataset(folder / "scenes", {"train": 32, "val": 24}, size=SIZE)
        started = time.perf_counter()
        teacher = folder / "teacher.pt"
        teacher_miou = fit(data, "unet_nano", teacher, 60, seed=0)
        rows = []
        for epochs, kd_weight, temperature in SETTINGS:
            for seed in range(args.seeds):
                scratch_miou = fit(data, "unet_tiny", folder / "s.pt", epochs, seed)
                distilled_miou = fit(data, "unet_tiny", folder / "s.pt", epochs, seed, teacher=str(teacher),
                                     kd_weight=kd_weight, kd_temperature=temperature)
                rows.append({"epochs": epochs, "kd_weight": kd_weight, "kd_temperature": temperature, "seed": seed,
                             "scratch_miou": scratch_miou, "distilled_miou": distilled_miou})
                print(rows[-1], flush=True)
    result = {"machine": machine_info(1), "teacher": {"arch": "unet_nano", "epochs": 60, "val_miou": teacher_miou},
              "student": "unet_tiny", "seconds": time.perf_counter() - started, "runs": rows}
    write_json(HERE / "results" / f"distill-synthetic-{datetime.date.today().isoformat()}.json", result)
    section = markdown(result)
    replace_section(HERE / "RESULTS.md", "Benchmark suite results", "distillation-synthetic", section)
    print(section)


def markdown(result: dict) -> str:
    lines = ["## distillation-synthetic", "",
             f"Command: `python benchmarks/distill_synthetic.py`. Teacher unet_nano, 60 epochs on the synthetic "
             f"scenes: val mIoU {result['teacher']['val_miou']:.3f}. Students unet_tiny, lr 1e-2, batch 4, "
             "same seed and batches with and without the teacher; val mIoU on 24 synthetic val images.", "",
             "| epochs | kd weight | T | scratch mIoU per seed | distilled mIoU per seed | distilled wins | "
             "mean difference |", "| --- | --- | --- | --- | --- | --- | --- |"]
    settings = sorted({(r["epochs"], r["kd_weight"], r["kd_temperature"]) for r in result["runs"]})
    for epochs, kd_weight, temperature in settings:
        runs = [r for r in result["runs"] if (r["epochs"], r["kd_weight"], r["kd_temperature"])
                == (epochs, kd_weight, temperature)]
        scratch = np.array([r["scratch_miou"] for r in runs])
        distilled = np.array([r["distilled_miou"] for r in runs])
        lines.append(f"| {epochs} | {kd_weight} | {temperature} | {' '.join(f'{v:.3f}' for v in scratch)} | "
                     f"{' '.join(f'{v:.3f}' for v in distilled)} | {int((distilled > scratch).sum())} / {len(runs)} | "
                     f"{(distilled - scratch).mean():+.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
