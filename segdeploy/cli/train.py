"""``segdeploy train --data DIR --arch NAME``: train a model and keep the best checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import InputSizeOpt, JsonOpt
from segdeploy.limits import MAX_THREADS, SEED_MAX
from segdeploy.train.config import Loss, Schedule


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)


def train_command(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder (CamVid, generic or VOC layout).")],
    arch: Annotated[str, typer.Option("--arch", help="Preset to train, e.g. unet_small.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Best checkpoint path.")] = None,
    input_size: InputSizeOpt = None,
    epochs: Annotated[int, typer.Option(help="Epochs.")] = 40,
    batch: Annotated[int, typer.Option(help="Batch size.")] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 2e-3,
    loss: Annotated[Loss, typer.Option(help="Loss.")] = Loss.CE,
    schedule: Annotated[Schedule, typer.Option(help="Decay after warm-up.")] = Schedule.POLY,
    class_weights: Annotated[bool, typer.Option(help="Weight classes by inverse log frequency.")] = True,
    split: Annotated[str, typer.Option(help="Training split.")] = "train",
    val_split: Annotated[str, typer.Option(help="Validation split ('' for none).")] = "val",
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = 0,
    threads: Annotated[int | None, typer.Option(min=1, max=MAX_THREADS, help="torch CPU threads.")] = None,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed.")] = 0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    resume: Annotated[Path | None, typer.Option(help="Continue from a .last.pt checkpoint.")] = None,
    max_steps: Annotated[int | None, typer.Option(min=1, help="Cap steps per epoch (quick runs).")] = None,
    teacher: Annotated[Path | None, typer.Option(help="Distil from this checkpoint (same classes).")] = None,
    kd_weight: Annotated[float, typer.Option(min=0, help="Weight of the distillation term.")] = 0.5,
    kd_temperature: Annotated[float, typer.Option(help="Softening temperature (> 0).")] = 2.0,
    json_path: JsonOpt = None,
) -> None:
    """Train a preset with validation mIoU every epoch; the best checkpoint is kept."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from segdeploy.fileio import write_json
    from segdeploy.sizes import parse_hw
    from segdeploy.train.config import EpochResult, TrainConfig
    from segdeploy.train.trainer import train_model

    config = TrainConfig(
        data=str(data), arch=arch, output=str(output or f"{arch}.pt"),
        input_size=parse_hw(input_size) if input_size else TrainConfig.input_size,
        epochs=epochs, batch=batch, lr=lr, loss=loss, schedule=schedule,
        class_weights=class_weights, split=split, val_split=val_split or None, workers=workers,
        threads=threads, seed=seed, device=device, resume=str(resume) if resume else None,
        max_steps_per_epoch=max_steps, teacher=str(teacher) if teacher else None, kd_weight=kd_weight,
        kd_temperature=kd_temperature,
    )
    columns = (TextColumn("epoch {task.fields[epoch]}"), BarColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
               TextColumn("val mIoU {task.fields[miou]}"), TimeRemainingColumn())
    with Progress(*columns, console=console.err, disable=console.STATE.quiet) as progress:
        task = progress.add_task("train", total=None, epoch=0, loss=0.0, miou="-")

        def on_step(event) -> None:
            if isinstance(event, EpochResult):
                miou = "-" if event.val_miou is None else f"{event.val_miou:.3f}"
                progress.update(task, miou=miou)
                console.info(
                    f"epoch {event.epoch}/{epochs}: loss {event.loss:.4f}, val mIoU {miou}, {event.seconds:.0f} s"
                )
            else:
                progress.update(task, total=event.steps * epochs, completed=event.epoch * event.steps + event.step + 1,
                                epoch=event.epoch + 1, loss=event.loss)

        report = train_model(config, on_step)
    best = "-" if report.best_miou is None else f"{report.best_miou:.4f}"
    console.out.print(f"best val mIoU {best} at epoch {report.best_epoch}; wrote {report.output} "
                      f"({report.seconds / 60:.1f} min)")
    if json_path:
        write_json(json_path, {"output": report.output, "best_miou": report.best_miou, "best_epoch": report.best_epoch,
                               "seconds": report.seconds, "epochs": [e.__dict__ for e in report.epochs]})
