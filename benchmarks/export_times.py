"""Export + verification time and verification figures for every preset recipe.

Usage: python benchmarks/export_times.py [--out-dir DIR]
Writes benchmarks/results/export-<date>.json and benchmarks/EXPORT.md.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import torch

from segdeploy.bench.machine import machine_info
from segdeploy.export.onnx_export import export_onnx
from segdeploy.export.recipe import load_recipe
from segdeploy.fileio import atomic_write_text, write_json
from segdeploy.models.checkpoint import load_model

HERE = Path(__file__).resolve().parent
RECIPES = ["unet_small", "swin_seg_nano", "unet", "swin_seg_t"]


def run(out_dir: Path) -> list[dict]:
    rows = []
    for name in RECIPES:
        recipe = load_recipe(HERE.parent / "export" / f"{name}.toml")
        model, meta = load_model(recipe.source, num_classes=recipe.num_classes)
        started = time.perf_counter()
        report = export_onnx(model, out_dir / f"{name}.onnx", recipe.config, meta)
        rows.append({"model": name, "total_seconds": round(time.perf_counter() - started, 2), **report.to_dict()})
        print(name, rows[-1]["total_seconds"], "s", flush=True)
    return rows


def markdown(rows: list[dict], machine: dict) -> str:
    lines = [
        "# Export times and verification figures",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}. Command: `python benchmarks/export_times.py`.",
        "Verification: ONNX Runtime (CPU) vs eager PyTorch on seeded synthetic scenes; random weights.",
        "",
        "| model | MB | export s | verify s | shape | max abs | max rel | argmax agree | confident px |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        verification = row["verification"]
        for case in verification["cases"]:
            lines.append(
                f"| {row['model']} | {row['size_bytes'] / 1e6:.1f} | {row['export_seconds']:.1f} | "
                f"{verification['seconds']:.1f} | {'x'.join(map(str, case['shape']))} | {case['max_abs']:.2e} | "
                f"{case['max_rel']:.2e} | {case['agreement']:.4%} | {case['confident_fraction']:.1%} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=None, help="keep the ONNX files here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out_dir or Path(scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        rows = run(out_dir)
    machine = machine_info(torch.get_num_threads())
    stamp = datetime.date.today().isoformat()
    write_json(HERE / "results" / f"export-{stamp}.json", {"machine": machine, "results": rows})
    atomic_write_text(HERE / "EXPORT.md", markdown(rows, machine))


if __name__ == "__main__":
    main()
