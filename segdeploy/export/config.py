"""Configuration and report types of the export stage (torch-free)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from segdeploy.errors import BadInputError, check_range, convert_choices
from segdeploy.metadata import ArtifactMeta, InputLayout

DEFAULT_OPSET = 20  # torch's default; Q/DQ with FP16 scales needs >= 19
MIN_OPSET = 18  # the dynamo exporter's lowest
DEFAULT_ATOL = 1e-4  # as a fraction of max |reference logit|
DEFAULT_RTOL = 1e-3
DEFAULT_MIN_AGREEMENT = 0.999
DEFAULT_MARGIN = 1e-3  # top-2 logit margin above which argmax must agree
SECOND_VERIFY_SIZE = (100, 130)  # not a multiple of 32 on purpose


def newest_opset() -> int:
    """The newest default-domain opset the installed onnx package defines."""
    import onnx.defs

    return onnx.defs.onnx_opset_version()


@dataclass(frozen=True)
class ExportConfig:
    """How to export. ``input_size`` None means the metadata's ``eval_size``."""

    input_size: tuple[int, int] | None = None
    opset: int = DEFAULT_OPSET
    dynamic: bool = True  # dynamic batch, height and width
    with_argmax: bool = False  # graph ends in argmax -> uint8 "mask"
    fuse_normalize: bool = False  # graph takes uint8 images and normalises inside
    input_layout: InputLayout = InputLayout.NCHW  # NHWC only with fuse_normalize
    verify: bool = True
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    margin: float = DEFAULT_MARGIN
    slim: bool = True
    verbose: bool = False

    def __post_init__(self) -> None:
        convert_choices(self, {"input_layout": (InputLayout, "--input-layout")})
        if self.opset < MIN_OPSET:
            raise BadInputError(f"--opset {self.opset} is too old: the exporter emits opset >= {MIN_OPSET}")
        newest = newest_opset()
        if self.opset > newest:
            raise BadInputError(f"--opset {self.opset} is newer than the installed onnx knows (up to {newest})")
        if self.input_layout == InputLayout.NHWC and not self.fuse_normalize:
            raise BadInputError("NHWC input needs --fuse-normalize (float inputs are NCHW)")
        if self.input_size and min(self.input_size) < 1:
            raise BadInputError("--input-size must be positive")
        check_range(self.atol, "--atol", low=0.0)
        check_range(self.rtol, "--rtol", low=0.0)
        check_range(self.min_agreement, "the minimum agreement", low=0.0, high=1.0)

    def replace(self, **changes: Any) -> ExportConfig:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class VerificationCase:
    """Comparison of the ONNX output with eager PyTorch on one input shape."""

    shape: tuple[int, ...]
    max_abs: float | None  # None for mask outputs (no logits to compare)
    max_rel: float | None
    within_tolerance: float | None  # fraction of elements inside atol + rtol * |ref|
    agreement: float  # argmax agreement on confident pixels
    confident_fraction: float  # fraction of pixels whose top-2 margin exceeds the threshold
    passed: bool


@dataclass(frozen=True)
class VerificationReport:
    cases: tuple[VerificationCase, ...]
    atol: float
    rtol: float
    min_agreement: float
    margin: float
    seconds: float

    @property
    def passed(self) -> bool:
        return all(case.passed for case in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class ExportReport:
    output: str | None  # None when verification failed and nothing was written
    meta: ArtifactMeta
    input_size: tuple[int, int]
    opset: int
    dynamic: bool
    export_seconds: float
    size_bytes: int
    sha256: str
    verification: VerificationReport | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "arch": self.meta.arch,
            "input_size": list(self.input_size),
            "opset": self.opset,
            "dynamic": self.dynamic,
            "io": dataclasses.asdict(self.meta.io) | {"output": self.meta.io.output.value},
            "export_seconds": round(self.export_seconds, 3),
            "size_bytes": self.size_bytes,
            "sha256": self.sha256,
            "verification": self.verification.to_dict() if self.verification else None,
        }
