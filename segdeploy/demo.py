"""The built-in default job behind ``segdeploy demo``: the whole pipeline, no external data.

Synthetic street-like scenes (or ``--data DIR``) -> train a small U-Net -> verified ONNX ->
INT8 (CPU target, calibrated on the training split, gated on val) and FP16 -> OpenVINO IR
-> one bench table: eager PyTorch vs ONNX Runtime (fp32, int8, fp16) vs OpenVINO (auto and
f32), with mIoU against the labels and agreement with the eager model; JSON, Markdown and
plots in the output folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from segdeploy.errors import CheckFailedError

if TYPE_CHECKING:  # the bench is imported when the demo runs, not when the CLI starts
    from segdeploy.bench.results import BenchReport


@dataclass(frozen=True)
class DemoPlan:
    """Sizes of one demo run; ``quick`` is for tests."""

    arch: str
    input_size: tuple[int, int]
    train_images: int
    val_images: int
    epochs: int
    bench_iters: int

    @classmethod
    def for_mode(cls, quick: bool) -> DemoPlan:
        if quick:
            return cls("unet_tiny", (64, 80), 24, 6, 6, 3)
        # 160x224: at 96x128 every precision ran in ~10 ms here and the table showed nothing to choose between
        return cls("unet_small", (160, 224), 64, 24, 12, 30)


@dataclass(frozen=True)
class DemoReport:
    folder: str
    train_seconds: float
    best_miou: float | None
    rejected: tuple[str, ...]  # quantizations the accuracy gate refused, with why
    bench: BenchReport
    recommendation: str | None  # the one line the bench table supports (segdeploy.bench.recommend)

    def to_dict(self) -> dict:
        return {"folder": self.folder, "train_seconds": self.train_seconds, "best_miou": self.best_miou,
                "rejected": list(self.rejected), "recommendation": self.recommendation, "bench": self.bench.to_dict()}


def run_demo(out_dir: str | os.PathLike, data: str | None = None, quick: bool = False,
             on_step: Callable[[str], None] = lambda message: None) -> DemoReport:
    """Run the pipeline into ``out_dir``; ``on_step`` hears one line per stage."""
    from segdeploy.bench.recommend import recommendation
    from segdeploy.bench.report import write_outputs
    from segdeploy.bench.runner import BenchConfig, bench_artifacts
    from segdeploy.bench.stats import Budget
    from segdeploy.data.synthetic import write_synthetic_dataset
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.export.openvino_ir import export_openvino
    from segdeploy.metadata import Precision
    from segdeploy.quantize.config import AccuracyGate, QuantConfig
    from segdeploy.quantize.stage import quantize_onnx
    from segdeploy.train.trainer import TrainConfig, train_model

    plan = DemoPlan.for_mode(quick)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if data is None:
        on_step(f"writing {plan.train_images} + {plan.val_images} synthetic scenes to {out / 'data'}")
        data = str(write_synthetic_dataset(out / "data", {"train": plan.train_images, "val": plan.val_images},
                                           size=plan.input_size))
    on_step(f"training {plan.arch} for {plan.epochs} epochs at {plan.input_size[0]}x{plan.input_size[1]}")
    trained = train_model(TrainConfig(data=data, arch=plan.arch, output=str(out / "model.pt"),
                                      input_size=plan.input_size, epochs=plan.epochs, batch=8, lr=1e-2, seed=0))
    on_step("exporting to ONNX (verified against PyTorch) and OpenVINO IR")
    export_onnx(str(out / "model.pt"), out / "model.onnx", ExportConfig())
    export_openvino(out / "model.onnx", out / "model.xml")
    gate = AccuracyGate(eval_data=data)
    artifacts, rejected = [], []
    on_step("quantizing: INT8 (calibrated on the training split) and FP16, both gated on val")
    recipes = {"model_int8.onnx": QuantConfig(precision=Precision.INT8, calib=data, target="cpu", num_images=32,
                                              gate=gate),
               "model_fp16.onnx": QuantConfig(precision=Precision.FP16, gate=gate)}
    for name, config in recipes.items():
        try:
            quantize_onnx(out / "model.onnx", out / name, config)
            artifacts.append(str(out / name))
        except CheckFailedError as failure:
            rejected.append(f"{name}: {failure}")
    # INT8 also on OpenVINO: on CPUs without VNNI it pays there (1.6-1.8x fp32) more than on ONNX Runtime (1.2-1.3x).
    int8_openvino = [f"{path}@openvino:auto" for path in artifacts if path.endswith("_int8.onnx")]
    specs = (str(out / "model.pt"), str(out / "model.onnx"), *artifacts, f"{out / 'model.xml'}@openvino:auto",
             f"{out / 'model.xml'}@openvino:f32", *int8_openvino)
    on_step(f"benchmarking {len(specs)} artifacts on the val split")
    bench = bench_artifacts(BenchConfig(artifacts=specs, reference=str(out / "model.pt"), data=data,
                                  num_images=plan.val_images, warmup=Budget(iterations=3),
                                  iters=Budget(iterations=plan.bench_iters)))
    write_outputs(bench, out / "bench.json", out / "bench.md", out / "plots")
    return DemoReport(str(out.resolve()), trained.seconds, trained.best_miou, tuple(rejected), bench,
                      recommendation(bench))
