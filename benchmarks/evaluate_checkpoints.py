"""Val mIoU, per-class IoU and pixel accuracy of the committed checkpoints (eager PyTorch).

Usage: python benchmarks/evaluate_checkpoints.py [--data ../shared/data/camvid] [CKPT ...]
Evaluation goes through the shared preprocessing path at each checkpoint's eval size; the
masks are scored at the labels' own 360x480 resolution. Writes
benchmarks/results/checkpoints-<date>.json and benchmarks/checkpoints/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import time
from pathlib import Path

import torch

from segdeploy.bench.machine import machine_info
from segdeploy.data.datasets import open_dataset
from segdeploy.fileio import atomic_write_text, write_json
from segdeploy.models.checkpoint import load_model
from segdeploy.train.trainer import evaluate

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="*", type=Path, default=sorted((HERE / "checkpoints").glob("*.pt")))
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "camvid"))
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    dataset = open_dataset(args.data, args.split)
    rows = []
    for path in args.checkpoints:
        model, meta = load_model(path)
        started = time.perf_counter()
        matrix = evaluate(model, dataset, meta.preprocess)
        train = next((h for h in reversed(meta.history) if h["stage"] == "train"), {})
        rows.append({
            "checkpoint": path.name, "arch": meta.arch, "eval_size": list(meta.preprocess.eval_size),
            "split": args.split, "images": len(dataset), "miou": matrix.miou(),
            "pixel_accuracy": matrix.pixel_accuracy(),
            "per_class_iou": dict(zip(meta.class_names, matrix.iou().tolist())),
            "params": sum(p.numel() for p in model.parameters()), "size_mb": path.stat().st_size / 1e6,
            "best_epoch": train.get("epoch"), "epochs": (train.get("config") or {}).get("epochs"),
            "train_config": train.get("config"), "eval_seconds": time.perf_counter() - started,
        })
        print(f"{path.name}: val mIoU {rows[-1]['miou']:.4f}", flush=True)
    machine = machine_info(torch.get_num_threads())
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"checkpoints-{stamp}.json", {"machine": machine, "results": rows})
    atomic_write_text(HERE / "checkpoints" / "RESULTS.md", markdown(rows, machine))


def markdown(rows: list[dict], machine: dict) -> str:
    classes = list(rows[0]["per_class_iou"]) if rows else []
    lines = [
        "# Committed checkpoints: CamVid val accuracy",
        "",
        f"Command: `python benchmarks/evaluate_checkpoints.py`. Machine: {machine['cpu']}, {machine['cores']} cores.",
        "Eager PyTorch through the shared preprocessing path (stretch to the eval size), masks scored at 360x480;",
        "void (11) ignored; mIoU over the 11 classes, accumulated over the whole split.",
        "",
        "| checkpoint | arch | params (M) | MB | eval size | best epoch / epochs | val mIoU | pixel acc |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['checkpoint']} | {row['arch']} | {row['params'] / 1e6:.2f} | {row['size_mb']:.1f} | "
            f"{row['eval_size'][0]}x{row['eval_size'][1]} | {row['best_epoch']} / {row['epochs']} | "
            f"{row['miou']:.4f} | {row['pixel_accuracy']:.4f} |"
        )
    lines += ["", "Per-class IoU:", "", "| checkpoint | " + " | ".join(classes) + " |",
              "| --- |" + " --- |" * len(classes)]
    for row in rows:
        lines.append(f"| {row['checkpoint']} | " + " | ".join(f"{row['per_class_iou'][c]:.3f}" for c in classes) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
