"""The artifact metadata schema that travels inside every segdeploy artifact.

One versioned schema, stored as a plain JSON-compatible dict: in checkpoints (so
``torch.load(weights_only=True)`` reads it), in ONNX ``metadata_props`` under the key
``segdeploy``, later in OpenVINO ``rt_info`` and engine sidecars. Later commands read it
so users never repeat flags.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Any

from segdeploy import __version__
from segdeploy.errors import BadInputError, library_reason, shorten
from segdeploy.sizes import MAX_SIDE

# 2: io.output_stride / io.output_size (outputs below the input resolution). Metadata that uses neither is
# still written as 1, so segdeploy versions before 2 keep reading it; those versions refuse a 2 ("upgrade")
# instead of post-processing a strided output as if it were at the input resolution.
SCHEMA_VERSION = 2
ONNX_METADATA_KEY = "segdeploy"


class Precision(StrEnum):
    """Numeric precision of an artifact; one enum for every command."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"  # static, calibrated, as QDQ
    INT8_DYNAMIC = "int8-dynamic"


class ResizePolicy(StrEnum):
    """How an image is brought to the model's input size."""

    STRETCH = "stretch"  # resize to eval_size, aspect ratio not kept
    LETTERBOX = "letterbox"  # keep aspect ratio, pad to eval_size
    KEEP = "keep"  # native size, padded to a multiple of divisor


class ChannelOrder(StrEnum):
    RGB = "RGB"
    BGR = "BGR"


class InputLayout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"  # fused-normalisation graphs only (uint8 images as decoded)


class OutputKind(StrEnum):
    LOGITS = "logits"  # float NxCxHxW
    MASK = "mask"  # uint8 NxHxW class ids (graph ends in argmax)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


MAX_CLASSES = 65536  # far above any segmentation label set; a bound before lists of that length are built

@dataclass(frozen=True)
class Preprocess:
    """The preprocessing contract: what the model expects its input to be.

    ``mean``/``std`` are in ``channel_order`` and in the scale after ``pixel_scale``.
    """

    channel_order: ChannelOrder = ChannelOrder.RGB
    pixel_scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize_policy: ResizePolicy = ResizePolicy.STRETCH
    eval_size: tuple[int, int] = (360, 480)
    divisor: int = 32


@dataclass(frozen=True)
class TensorIO:
    """Graph I/O: stable tensor names, input dtype/layout and what the output holds."""

    input_name: str = "input"
    output_name: str = "logits"
    input_dtype: str = "float32"  # "uint8" when normalisation is fused into the graph
    input_layout: InputLayout = InputLayout.NCHW  # NHWC only for fused-normalisation graphs
    output: OutputKind = OutputKind.LOGITS
    # Where the output sits relative to the input: ceil(H / stride) x ceil(W / stride) (SegFormer and most
    # DeepLab heads predict at stride 4 or 8), or one fixed size whatever the input. Post-processing
    # upsamples to the input resolution first (bilinear logits, nearest class ids).
    output_stride: int = 1
    output_size: tuple[int, int] | None = None

    @property
    def below_input_resolution(self) -> bool:
        """Whether the output may differ in size from the input (a stride above 1 or a fixed size)."""
        return self.output_stride != 1 or self.output_size is not None

    def describe_geometry(self) -> str:
        """``stride 4``, ``a fixed 16x20`` or ``the input resolution``."""
        if self.output_size is not None:
            return f"a fixed {self.output_size[0]}x{self.output_size[1]}"
        return f"stride {self.output_stride}" if self.output_stride > 1 else "the input resolution"

    def output_spatial(self, input_size: tuple[int, int]) -> tuple[int, int]:
        """(h, w) of the output for an input of ``input_size`` (H, W)."""
        if self.output_size is not None:
            return self.output_size
        return -(-input_size[0] // self.output_stride), -(-input_size[1] // self.output_stride)


@dataclass(frozen=True)
class ArtifactMeta:
    """Everything a later stage needs to use an artifact without extra flags."""

    arch: str
    config: dict[str, Any]
    num_classes: int
    class_names: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    ignore_index: int | None = 255
    preprocess: Preprocess = field(default_factory=Preprocess)
    io: TensorIO = field(default_factory=TensorIO)
    precision: Precision = Precision.FP32
    source: dict[str, str] | None = None  # {"path": ..., "sha256": ...} it was made from
    created_by: str = f"segdeploy {__version__}"
    # Stage records (export options, verification figures, training summary ...).
    history: tuple[dict[str, Any], ...] = ()

    def output_shape(self, batch_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The output shape the model must return for an input batch of ``batch_shape``: (N, classes, h, w)
        logits or (N, h, w) class ids, h and w per the output stride or fixed size."""
        spatial = batch_shape[1:3] if self.io.input_layout == InputLayout.NHWC else batch_shape[2:4]
        classes = () if self.io.output == OutputKind.MASK else (self.num_classes,)
        return (batch_shape[0], *classes, *self.io.output_spatial((int(spatial[0]), int(spatial[1]))))

    def replace(self, **changes: Any) -> ArtifactMeta:
        """A copy with ``changes`` applied (the instance itself is frozen)."""
        return dataclasses.replace(self, **changes)

    def with_record(self, stage: str, **record: Any) -> ArtifactMeta:
        """A copy with one more stage record appended to ``history``."""
        return self.replace(history=(*self.history, {"stage": stage, **record}))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (lists, str, numbers) with ``schema_version``."""
        version = SCHEMA_VERSION if self.io.below_input_resolution else 1
        return {"schema_version": version, **_plain(dataclasses.asdict(self))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArtifactMeta:
        """Validate and build from a dict written by :meth:`to_dict`."""
        return _meta_from_dict(data)

    @classmethod
    def from_json(cls, text: str) -> ArtifactMeta:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BadInputError(f"segdeploy metadata is not valid JSON ({exc.msg} at character {exc.pos})") from exc
        except UnicodeDecodeError as exc:  # protobuf hands over bytes when a string field is not UTF-8
            raise BadInputError("segdeploy metadata is not UTF-8 text") from exc
        except ValueError as exc:  # Python refuses integers of over 4300 digits
            raise BadInputError("segdeploy metadata is invalid: it holds a number too long to read") from exc
        except RecursionError as exc:
            raise BadInputError("segdeploy metadata is not valid: its JSON nests too deeply") from exc
        return _meta_from_dict(data)


def default_class_names(num_classes: int) -> tuple[str, ...]:
    return tuple(f"class_{index}" for index in range(num_classes))


def default_palette(num_classes: int) -> tuple[tuple[int, int, int], ...]:
    """The Pascal VOC bit-interleaved palette: distinct colours for any class count."""
    palette = []
    for index in range(num_classes):
        red = green = blue = 0
        label = index
        for shift in range(7, -1, -1):
            red |= ((label >> 0) & 1) << shift
            green |= ((label >> 1) & 1) << shift
            blue |= ((label >> 2) & 1) << shift
            label >>= 3
        palette.append((red, green, blue))
    return tuple(palette)


def new_meta(
    arch: str,
    config: dict[str, Any],
    num_classes: int,
    *,
    class_names: tuple[str, ...] | None = None,
    palette: tuple[tuple[int, int, int], ...] | None = None,
    preprocess: Preprocess | None = None,
    **fields: Any,
) -> ArtifactMeta:
    """Metadata for a model with defaults filled in (generic names, VOC palette, ImageNet stats)."""
    return ArtifactMeta(
        arch=arch,
        config=dict(config),
        num_classes=num_classes,
        class_names=class_names or default_class_names(num_classes),
        palette=palette or default_palette(num_classes),
        preprocess=preprocess or Preprocess(),
        **fields,
    )


def _plain(value: Any) -> Any:
    """Convert tuples/enums/nested dicts into JSON-native types."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str):
        return str(value)  # str subclasses (torch.__version__) would not load with weights_only
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _meta_from_dict(data: Any) -> ArtifactMeta:
    if not isinstance(data, dict):
        raise BadInputError("segdeploy metadata is not a JSON object")
    version = data.get("schema_version")
    if not isinstance(version, int):
        raise BadInputError("segdeploy metadata has no schema_version; it was not written by segdeploy")
    if version > SCHEMA_VERSION:
        raise BadInputError(
            f"metadata schema_version {version} is newer than this segdeploy supports "
            f"({SCHEMA_VERSION}); upgrade segdeploy"
        )
    try:
        num_classes = int(data["num_classes"])
        meta = ArtifactMeta(
            arch=str(data["arch"]),
            config=dict(data.get("config") or {}),
            num_classes=num_classes,
            class_names=tuple(str(name) for name in data["class_names"]),
            palette=tuple(tuple(int(c) for c in rgb) for rgb in data["palette"]),
            ignore_index=None if data.get("ignore_index") is None else int(data["ignore_index"]),
            preprocess=_preprocess_from_dict(data.get("preprocess") or {}),
            io=_io_from_dict(data.get("io") or {}),
            precision=Precision(data.get("precision", "fp32")),
            source=data.get("source"),
            created_by=str(data.get("created_by", "unknown")),
            history=_history(data.get("history") or ()),
        )
    except KeyError as exc:
        raise BadInputError(f"segdeploy metadata is invalid: it has no {exc.args[0]!r}") from exc
    except (TypeError, ValueError, OverflowError) as exc:  # int("x"), int(inf), Precision("fp37"), dict(5) ...
        raise BadInputError(f"segdeploy metadata is invalid: {library_reason(exc, 100)}") from exc
    except RecursionError as exc:  # a value nested 10^5 deep
        raise BadInputError("segdeploy metadata is invalid: a value nests too deeply") from exc
    _validate(meta)
    return meta


# How each stored field becomes its type; absent fields take the dataclass defaults (defined once, above).
_PREPROCESS_FIELDS = {"channel_order": ChannelOrder, "pixel_scale": float, "resize_policy": ResizePolicy,
                      "mean": lambda v: tuple(float(x) for x in v), "std": lambda v: tuple(float(x) for x in v),
                      "eval_size": lambda v: tuple(int(x) for x in v), "divisor": int}
_IO_FIELDS = {"input_name": str, "output_name": str, "input_dtype": str, "input_layout": InputLayout,
              "output": OutputKind, "output_stride": int,
              "output_size": lambda v: None if v is None else tuple(int(x) for x in v)}


def _history(records: Any) -> tuple[dict[str, Any], ...]:
    if not isinstance(records, list | tuple) or not all(isinstance(record, dict) for record in records):
        raise TypeError("history must be a list of records (objects)")
    return tuple(records)


def _preprocess_from_dict(data: dict[str, Any]) -> Preprocess:
    return Preprocess(**{name: convert(data[name]) for name, convert in _PREPROCESS_FIELDS.items() if name in data})


def _io_from_dict(data: dict[str, Any]) -> TensorIO:
    return TensorIO(**{name: convert(data[name]) for name, convert in _IO_FIELDS.items() if name in data})


def _validate(meta: ArtifactMeta) -> None:
    problems = []
    if not 1 <= meta.num_classes <= MAX_CLASSES:
        raise BadInputError(f"segdeploy metadata is invalid: num_classes must be 1 to {MAX_CLASSES}, got "
                            f"{shorten(str(meta.num_classes), 20)}")
    if len(meta.class_names) != meta.num_classes:
        problems.append(f"{len(meta.class_names)} class_names for {meta.num_classes} classes")
    if len(meta.palette) < meta.num_classes:
        problems.append(f"palette has {len(meta.palette)} colours for {meta.num_classes} classes")
    pre = meta.preprocess
    if any(not 0 <= channel <= 255 for rgb in meta.palette for channel in rgb) or any(len(rgb) != 3
                                                                                      for rgb in meta.palette):
        problems.append("palette colours must be 3 values in 0-255")
    if len(pre.mean) != 3 or len(pre.std) != 3 or not all(s > 0 and math.isfinite(s) for s in pre.std) \
            or not all(math.isfinite(m) for m in pre.mean) or not math.isfinite(pre.pixel_scale):
        problems.append("mean/std must have 3 finite values and std must be positive")
    if len(pre.eval_size) != 2 or min(pre.eval_size) < 1 or max(pre.eval_size) > MAX_SIDE \
            or not 1 <= pre.divisor <= MAX_SIDE:
        problems.append(f"eval_size must be two ints in 1..{MAX_SIDE} and divisor in 1..{MAX_SIDE}")
    io = meta.io
    if not 1 <= io.output_stride <= MAX_SIDE or (io.output_size is not None and (
            len(io.output_size) != 2 or not all(1 <= side <= MAX_SIDE for side in io.output_size))):
        problems.append(f"output_stride must be in 1..{MAX_SIDE} and output_size two ints in 1..{MAX_SIDE}")
    if problems:
        raise BadInputError("segdeploy metadata is invalid: " + "; ".join(problems))
