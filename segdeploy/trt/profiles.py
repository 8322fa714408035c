"""Optimization-profile shapes: parsing (trtexec syntax), defaults from metadata, validation.

Torch- and TensorRT-free.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from segdeploy.errors import BadInputError
from segdeploy.metadata import ArtifactMeta
from segdeploy.sizes import round_up

_SHAPE = re.compile(r"^(?:(?P<name>[^:]+):)?(?P<dims>\d+(?:x\d+){3})$")
DEFAULT_MAX_BATCH = 4


@dataclass(frozen=True)
class Profile:
    """min/opt/max NCHW (or NHWC for such graphs) shapes of the one image input."""

    input_name: str
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def describe(self) -> str:
        return f"{self.input_name}: min {_fmt(self.min)}, opt {_fmt(self.opt)}, max {_fmt(self.max)}"

    def to_dict(self) -> dict:
        return {self.input_name: [list(self.min), list(self.opt), list(self.max)]}


def _fmt(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def parse_shape(text: str, input_name: str) -> tuple[int, ...]:
    """``"1x3x360x480"`` or trtexec's ``"input:1x3x360x480"`` (the name must be the model's input)."""
    match = _SHAPE.match(text.strip())
    if not match:
        raise BadInputError(f"shape {text!r} is not NxCxHxW (or {input_name}:NxCxHxW), e.g. 1x3x360x480")
    if match.group("name") and match.group("name") != input_name:
        raise BadInputError(f"shape {text!r} names input {match.group('name')!r}; the model's input is {input_name!r}")
    dims = tuple(int(d) for d in match.group("dims").split("x"))
    if 0 in dims:
        raise BadInputError(f"shape {text!r} has a zero dimension")
    return dims


def default_profile(meta: ArtifactMeta, static_shape: tuple[int, ...] | None) -> Profile:
    """From the metadata: opt = batch 1 at the eval size; min = one divisor step per side, but at
    most half the eval size; max = batch 4 at twice the eval size. A static graph has one shape."""
    name = meta.io.input_name
    if static_shape is not None:
        return Profile(name, static_shape, static_shape, static_shape)
    height, width = meta.preprocess.eval_size
    divisor = meta.preprocess.divisor
    smallest = (max(divisor, _down(height // 2, divisor)), max(divisor, _down(width // 2, divisor)))
    largest = (round_up(height * 2, divisor), round_up(width * 2, divisor))
    return Profile(name, _layout(meta, 1, smallest), _layout(meta, 1, (height, width)),
                   _layout(meta, DEFAULT_MAX_BATCH, largest))


def _layout(meta: ArtifactMeta, batch: int, size: tuple[int, int]) -> tuple[int, ...]:
    return (batch, *size, 3) if meta.io.input_layout == "NHWC" else (batch, 3, *size)


def _down(value: int, divisor: int) -> int:
    return value // divisor * divisor


def validate_profile(profile: Profile, meta: ArtifactMeta, static_shape: tuple[int, ...] | None) -> None:
    """min <= opt <= max per dimension, 3 channels, and a static graph's only shape."""
    channel_axis = 3 if meta.io.input_layout == "NHWC" else 1
    for label, shape in (("min", profile.min), ("opt", profile.opt), ("max", profile.max)):
        if len(shape) != 4 or shape[channel_axis] != 3:
            raise BadInputError(f"--{label}-shape {_fmt(shape)}: the input has 3 channels at axis {channel_axis} "
                                f"({meta.io.input_layout})")
    if not all(lo <= mid <= hi for lo, mid, hi in zip(profile.min, profile.opt, profile.max)):
        raise BadInputError(f"profile must satisfy min <= opt <= max in every dimension: {profile.describe()}")
    if static_shape is not None and {profile.min, profile.opt, profile.max} != {static_shape}:
        raise BadInputError(f"this ONNX has a static input {_fmt(static_shape)}; the profile must be exactly that "
                            "(re-export without --static for a range)")
    if meta.preprocess.resize_policy.value == "keep":
        divisor = meta.preprocess.divisor
        spatial = (1, 2) if meta.io.input_layout == "NHWC" else (2, 3)
        for label, shape in (("min", profile.min), ("max", profile.max)):
            if any(shape[axis] % divisor for axis in spatial):
                raise BadInputError(f"--{label}-shape {_fmt(shape)}: H and W must be multiples of {divisor} "
                                    "(this model pads native-size images to that divisor)")
