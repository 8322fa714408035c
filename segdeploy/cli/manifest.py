"""``segdeploy manifest --data DIR --split NAME -o FILE``: write a calibration manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.data.manifest import Selection


def register(app: typer.Typer) -> None:
    app.command("manifest")(manifest_command)


def manifest_command(
    data: Annotated[Path, typer.Option("--data", help="Dataset folder, or a folder of plain images.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Manifest JSON to write.")],
    split: Annotated[str | None, typer.Option(help="Split to choose from (none: a plain image folder).")] = None,
    num_images: Annotated[int, typer.Option(help="How many images (capped by what exists).")] = 100,
    select: Annotated[
        Selection, typer.Option(help="random, or class-balanced (needs masks).")
    ] = Selection.RANDOM,
    seed: Annotated[int, typer.Option(help="Seed for the selection.")] = 0,
) -> None:
    """Choose calibration images from a split and write them, with hashes, as a manifest."""
    from segdeploy.data.manifest import build_manifest, write_manifest

    manifest = build_manifest(data, split, num_images, select.value, seed)
    write_manifest(manifest, output)
    console.out.print(f"wrote {output}: {len(manifest.images)} images from {manifest.source} "
                      f"({manifest.selection}, seed {manifest.seed}), digest {manifest.digest[:12]}")
