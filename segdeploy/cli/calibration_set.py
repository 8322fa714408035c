"""``segdeploy calibration-set --data DIR --split NAME -o FILE``: choose calibration images and write them down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.data.calibration_set import Selection
from segdeploy.limits import SEED_MAX


def register(app: typer.Typer) -> None:
    app.command("calibration-set")(calibration_set_command)
    # The command's first name; "manifest" now means only a TensorRT engine's sidecar file.
    app.command("manifest", hidden=True)(calibration_set_command)


def calibration_set_command(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder, or a folder of plain images.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Calibration set JSON to write.")],
    split: Annotated[str | None, typer.Option(help="Split to choose from (none: a plain image folder).")] = None,
    num_images: Annotated[int, typer.Option(help="How many images (capped by what exists).")] = 100,
    select: Annotated[
        Selection, typer.Option(help="random, or class-balanced (needs masks).")
    ] = Selection.RANDOM,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed for the selection.")] = 0,
) -> None:
    """Choose calibration images from a split and write them, with their hashes, as a calibration set."""
    from segdeploy.data.calibration_set import build_calibration_set, write_calibration_set

    chosen = build_calibration_set(data, split, num_images, select, seed)
    write_calibration_set(chosen, output)
    console.out.print(f"wrote {output}: {len(chosen.images)} images from {chosen.source} "
                      f"({chosen.selection}, seed {chosen.seed}), digest {chosen.digest[:12]}")
