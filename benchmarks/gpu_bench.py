"""The torch backend on a GPU: eager fp32, fp16 autocast, channels_last and CUDA-graph replay, per
preset at 360x480, batch 1 and 8; part of ``scripts/gpu-check``.

Usage: python benchmarks/gpu_bench.py [--device cuda] [--models unet,unet_small,...] [--batches 1,8]
       [--size 360x480] [--calls 50] [--out benchmarks]
Writes OUT/GPU.md and OUT/results/gpu-<date>.json. Each row runs ``TorchBackend`` as segdeploy does
(pinned staging, its own stream), on randomly initialised presets (latency does not depend on the
weights) fed the batch ``prepare`` makes of a 360x480 frame (at the model's eval size). The
first row per model and batch is the old path, ``torch.from_numpy(batch).to(device)`` with
pageable memory, for comparison. Agreement is argmax agreement with the same model's fp32 row.
All variants of one model and batch are measured in interleaved blocks, so drift hits them alike.
A variant that fails gets its error in its row (the others go on) and the exit code is 1.
Without a GPU: one line on stderr, exit 4. ``--device cpu`` runs the CPU-valid variants (a check
of this script on machines without a GPU, not a benchmark).
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from common import replace_markdown_section

from segdeploy.backends.base import DEVICE_PHASES
from segdeploy.bench.machine import machine_info
from segdeploy.fileio import write_json

HERE = Path(__file__).resolve().parent
MODELS = ("unet", "unet_small", "swin_seg_t", "swin_seg_nano")
WARMUP, BLOCK = 5, 10
TITLE, SECTION = "# GPU benchmarks", "## The torch backend on the GPU"
INTRO = f"""{TITLE}

Written by `bash scripts/gpu-check` on a lent GPU machine (see the README, "What has run where"):
each section names its command, machine and date. TensorRT is not installed on those machines, so
nothing here ran through TensorRT.
"""


@dataclass(frozen=True)
class Variant:
    label: str
    options: dict  # TorchBackend keyword arguments; None for the pageable baseline
    cuda_only: bool = False


VARIANTS = (
    Variant("fp32 pageable (.to)", {}, cuda_only=True),
    Variant("fp32", {"autocast": "off"}),
    Variant("fp16", {"autocast": "fp16"}, cuda_only=True),
    Variant("fp16 channels_last", {"autocast": "fp16", "channels_last": True}, cuda_only=True),
    Variant("fp16 channels_last graph", {"autocast": "fp16", "channels_last": True, "cuda_graph": True},
            cuda_only=True),
    Variant("fp32 graph", {"autocast": "off", "cuda_graph": True}, cuda_only=True),
    Variant("fp32 channels_last", {"autocast": "off", "channels_last": True}),
)
PAGEABLE = VARIANTS[0]


@dataclass
class Row:
    variant: Variant
    runner: object  # callable batch -> logits
    close: object
    wall_ms: list[float] = field(default_factory=list)
    phases: dict[str, list[float]] = field(default_factory=dict)
    phase_source: object = None  # the backend whose phase_timings_ms to read
    logits: np.ndarray | None = None
    error: str | None = None  # why this variant stopped (the others go on)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    torch = _torch_or_exit(args.device)
    if torch is None:
        return 4
    started = time.perf_counter()
    results = []
    for model in args.models:
        for batch_size in args.batches:
            results.extend(_measure(model, batch_size, args))
            print(f"{model} batch {batch_size}: done ({time.perf_counter() - started:.0f} s)", flush=True)
    report = {"command": "python benchmarks/gpu_bench.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "date": datetime.date.today().isoformat(), "machine": machine_info(), "torch": _torch_info(torch),
              "device": args.device, "size": list(args.size), "calls": args.calls, "results": results,
              "seconds": time.perf_counter() - started}
    (args.out / "results").mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results" / f"gpu-{report['date']}.json", report)
    replace_markdown_section(args.out / "GPU.md", TITLE, INTRO)
    replace_markdown_section(args.out / "GPU.md", SECTION, render(report))
    print(render(report))
    failed = [f"{row['model']} batch {row['batch']} {row['variant']}" for row in results if "error" in row]
    if failed:
        print(f"gpu_bench: {len(failed)} variant(s) failed (see their rows): {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--models", type=lambda text: tuple(text.split(",")), default=MODELS)
    parser.add_argument("--batches", type=lambda text: tuple(int(b) for b in text.split(",")), default=(1, 8))
    parser.add_argument("--size", type=lambda text: tuple(int(d) for d in text.split("x")), default=(360, 480))
    parser.add_argument("--calls", type=int, default=50, help="timed calls per variant")
    parser.add_argument("--out", type=Path, default=HERE)
    return parser.parse_args(argv)


def _torch_or_exit(device: str):
    """torch, or None after one line on stderr when the device is not there."""
    try:
        import torch
    except ImportError:
        print("gpu_bench: torch is not installed; run scripts/gpu-check on a machine with torch and a GPU",
              file=sys.stderr)
        return None
    if device == "cuda" and not torch.cuda.is_available():
        print("gpu_bench: torch sees no CUDA GPU; run it on a GPU machine (or --device cpu to check the script)",
              file=sys.stderr)
        return None
    return torch


def _torch_info(torch) -> dict:
    info = {"version": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
        info["capability"] = list(torch.cuda.get_device_capability())
    return info


def _checkpoint_and_batch(model: str, batch_size: int, size: tuple[int, int], folder: Path) -> tuple[Path, np.ndarray]:
    """One randomly initialised checkpoint (every variant runs the same weights) and what segdeploy feeds
    it for a frame of ``size``: ``prepare``'s batch, repeated."""
    from segdeploy.data.preprocess import prepare
    from segdeploy.models.checkpoint import load_model, save_checkpoint

    network, meta = load_model(model)
    checkpoint = save_checkpoint(network, folder / f"{model}.pt", meta)
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    batch, _ = prepare(frame, meta.preprocess, meta.io)
    return checkpoint, np.ascontiguousarray(np.repeat(batch, batch_size, axis=0))


def _measure(model: str, batch_size: int, args: argparse.Namespace) -> list[dict]:
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as folder:  # activation loads the weights: gone after it
            checkpoint, batch = _checkpoint_and_batch(model, batch_size, args.size, Path(folder))
            rows = [_open(checkpoint, variant, args.device) for variant in VARIANTS
                    if args.device == "cuda" or not variant.cuda_only]
        for row in rows:
            _guarded(row, lambda row=row: _warm_up(row, batch))
        while any(_wants_more(row, args.calls) for row in rows):
            for row in rows:
                if _wants_more(row, args.calls):
                    count = min(BLOCK, args.calls - len(row.wall_ms))
                    _guarded(row, lambda row=row, count=count: _timed_block(row, batch, count))
    finally:
        for row in rows:
            row.close()
    reference = next((row.logits for row in rows if row.variant.label == "fp32" and row.error is None), None)
    return [_result(model, batch, row, reference) for row in rows]


def _wants_more(row: Row, calls: int) -> bool:
    return row.error is None and len(row.wall_ms) < calls


def _guarded(row: Row, work) -> None:
    """Run ``work``; an exception stops this variant only and is reported in its row."""
    try:
        work()
    except Exception as exc:  # one variant's failure (a refused graph capture, memory) must not lose the rest
        row.error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _warm_up(row: Row, batch: np.ndarray) -> None:
    for _ in range(WARMUP):  # graphs are captured and staging buffers made here
        row.logits = row.runner(batch)


def _open(checkpoint: Path, variant: Variant, device: str) -> Row:
    if variant is PAGEABLE:
        return _pageable_row(checkpoint)
    from segdeploy.backends.torch_backend import TorchBackend

    backend = TorchBackend(checkpoint, device, **variant.options)
    row = Row(variant, backend.infer, backend.close, phase_source=backend)
    _guarded(row, backend.activate)
    return row


def _pageable_row(checkpoint: Path) -> Row:
    """The path the torch backend had before pinned staging: pageable memory, synchronous copies."""
    import torch

    from segdeploy.models.checkpoint import load_model

    network = load_model(checkpoint)[0].cuda()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return network(torch.from_numpy(batch).to("cuda")).float().cpu().numpy()

    return Row(PAGEABLE, run, lambda: None)


def _timed_block(row: Row, batch: np.ndarray, count: int) -> None:
    for _ in range(count):
        tick = time.perf_counter()
        row.runner(batch)
        row.wall_ms.append((time.perf_counter() - tick) * 1000)
        for phase, ms in (row.phase_source.phase_timings_ms.items() if row.phase_source else ()):
            row.phases.setdefault(phase, []).append(ms)


def _result(model: str, batch: np.ndarray, row: Row, reference: np.ndarray | None) -> dict:
    common = {"model": model, "batch": int(batch.shape[0]), "input_shape": list(batch.shape),
              "variant": row.variant.label, "options": row.variant.options}
    if row.error is not None or not row.wall_ms:
        return {**common, "error": row.error or "no timed call"}
    ordered = sorted(row.wall_ms)
    median = statistics.median(ordered)
    agreement = None if reference is None else float((row.logits.argmax(1) == reference.argmax(1)).mean())
    return {**common,
            "wall_ms": {"median": median, "mean": statistics.fmean(ordered),
                        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))], "min": ordered[0]},
            "images_per_s": batch.shape[0] / median * 1000,
            "phases_ms": {phase: statistics.median(values) for phase, values in row.phases.items()},
            "agreement_vs_fp32": agreement}


def render(report: dict) -> str:
    """GPU.md's section: the machine, the command, one table row per model, batch and variant."""
    torch_info, machine = report["torch"], report["machine"]
    gpu = torch_info.get("gpu", "no GPU (--device cpu: a check of the script, not a benchmark)")
    lines = [SECTION, "",
             f"{gpu} (compute capability {'.'.join(map(str, torch_info.get('capability', []))) or '-'}), "
             f"torch {torch_info['version']}, CUDA {torch_info['cuda']}, cuDNN {torch_info['cudnn']}; host "
             f"{machine['cpu']}, {machine['cores']} cores. {report['date']}, {report['seconds']:.0f} s in all.", "",
             f"Command: `{report['command']}` (run by `bash scripts/gpu-check`). Input: a "
             f"{report['size'][0]}x{report['size'][1]} frame through `prepare` (the model's eval size and divisor), "
             f"repeated to the batch; randomly initialised presets; {report['calls']} timed calls per row after "
             f"{WARMUP} warm-up calls, variants interleaved in blocks of {BLOCK}. Wall: numpy batch in to numpy "
             "logits out (host copies included); h2d/compute/d2h: CUDA events on the backend's stream (medians). "
             f"cudnn.benchmark {torch_info['cudnn_benchmark']}, TF32 matmul {torch_info['tf32_matmul']}, "
             f"TF32 cuDNN {torch_info['tf32_cudnn']} (torch's defaults).", "",
             "| model | batch | input | variant | wall median ms | p90 ms | images/s | h2d ms | compute ms | d2h ms "
             "| agreement vs fp32 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in report["results"]:
        cells = [row["model"], str(row["batch"]), "x".join(map(str, row["input_shape"][1:])), row["variant"]]
        if "error" in row:
            cells += [f"failed: {row['error']}".replace("|", "/")] + ["-"] * 7
        else:
            phases, agreement = row["phases_ms"], row["agreement_vs_fp32"]
            cells += [f"{row['wall_ms']['median']:.2f}", f"{row['wall_ms']['p90']:.2f}", f"{row['images_per_s']:.1f}",
                      *(f"{phases[p]:.3f}" if p in phases else "-" for p in DEVICE_PHASES),
                      "-" if agreement is None else f"{agreement:.4f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
