"""Option types shared by every command (the CLI conventions in one place)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.export.adopt_config import Convention
from segdeploy.limits import MAX_THREADS
from segdeploy.metadata import ChannelOrder, ResizePolicy
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


# Labels and preprocessing for models without segdeploy metadata (adopt, export --model-factory).
ClassesOpt = Annotated[str | None, typer.Option(
    "--classes", help="camvid, cityscapes, ade20k, voc, or a file: one class name per line, optionally r,g,b.")]
ConventionOpt = Annotated[Convention, typer.Option(
    "--preprocess", help="Base convention: imagenet (RGB, /255, ImageNet mean/std), zero-one (/255), raw (0-255).")]
ChannelOrderOpt = Annotated[ChannelOrder | None, typer.Option(help="Override: channel order the model takes.")]
PixelScaleOpt = Annotated[float | None, typer.Option(help="Override: pixel scale (1/255 = 0.00392...).")]
MeanOpt = Annotated[str | None, typer.Option(help="Override: mean per channel after the pixel scale, e.g. 0.5,0.5,0.5")]
StdOpt = Annotated[str | None, typer.Option(help="Override: std per channel (> 0), after the pixel scale.")]
ResizePolicyOpt = Annotated[ResizePolicy, typer.Option(help="stretch, letterbox, or keep (native size, padded).")]
DivisorOpt = Annotated[int, typer.Option(help="Pad/round input sizes to a multiple of this.")]
IgnoreIndexOpt = Annotated[int | None, typer.Option(
    help="Label id ignored by metrics (default: the class set's, 11 for camvid, else 255).")]


def parse_triple(text: str | None, name: str) -> tuple[float, ...] | None:
    """``"0.5,0.5,0.5"`` -> floats; LabelConfig checks the count and values."""
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        from segdeploy.errors import BadInputError

        raise BadInputError(f"{name} takes three comma-separated numbers, got {text[:40]!r}") from None


def label_config(classes, num_classes, preprocess, channel_order, pixel_scale, mean, std, resize_policy, divisor,
                 input_size, ignore_index):
    """The LabelConfig that adopt's and export --model-factory's shared options describe."""
    from segdeploy.export.adopt_config import LabelConfig
    from segdeploy.sizes import parse_hw

    return LabelConfig(classes, num_classes, preprocess, channel_order, pixel_scale, parse_triple(mean, "--mean"),
                       parse_triple(std, "--std"), resize_policy, divisor, parse_hw(input_size) if input_size else None,
                       ignore_index)
