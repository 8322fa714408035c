"""Option types shared by every command (the CLI conventions in one place)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

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


class PrecisionChoice(str, Enum):
    fp32 = "fp32"
    fp16 = "fp16"
    int8 = "int8"
    int8_dynamic = "int8-dynamic"


class LayoutChoice(str, Enum):
    nchw = "NCHW"
    nhwc = "NHWC"


class SelectChoice(str, Enum):
    """How images are chosen from a split (calibration sets)."""

    random = "random"
    class_balanced = "class-balanced"


class BackendChoice(str, Enum):
    auto = "auto"
    torch = "torch"
    onnxruntime = "onnxruntime"
    openvino = "openvino"
    tensorrt = "tensorrt"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


BackendOpt = Annotated[BackendChoice, typer.Option(help="Backend (auto: by file type).")]
DeviceOpt = Annotated[DeviceChoice, typer.Option(help="Device (auto: CUDA if the backend has it, else CPU).")]
ThreadsOpt = Annotated[int | None, typer.Option(help="Inference threads (default: the backend's).")]
