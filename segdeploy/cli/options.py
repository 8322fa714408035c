"""Option types shared by every command (the CLI conventions in one place)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.limits import MAX_THREADS
from segdeploy.runtime.artifacts import BackendKind, Device

InputSizeOpt = Annotated[
    str | None, typer.Option("--input-size", help="Input size HxW (height first), e.g. 360x480.")
]
JsonOpt = Annotated[
    Path | None, typer.Option("--json", help="Write a JSON summary to PATH ('-' = stdout).")
]
ArchOpt = Annotated[
    str | None, typer.Option("--arch", help="Architecture (preset name) for a plain state dict.")
]
NumClassesOpt = Annotated[
    int | None, typer.Option("--num-classes", help="Number of classes (presets, plain state dicts).")
]


BackendOpt = Annotated[BackendKind, typer.Option(help="Backend (auto: by file type).")]
DeviceOpt = Annotated[Device, typer.Option(help="Device (auto: CUDA if the backend has it, else CPU).")]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, max=MAX_THREADS,
                                               help="Inference threads (default: the backend's).")]
