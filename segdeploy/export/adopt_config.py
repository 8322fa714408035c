"""What a foreign model's metadata is made from (labels, the preprocessing convention) and how a user's
own module is named (``FactoryConfig``); torch-free, so the CLI imports it cheaply.

Shared by ``segdeploy adopt`` (a foreign ONNX) and the export of a user's own ``nn.Module``.
``--preprocess`` names a base convention; ``--channel-order``, ``--pixel-scale``, ``--mean`` and
``--std`` override its parts (mean and std in the units after the pixel scale, as ``Preprocess``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum

from segdeploy.errors import BadInputError, check_range, convert_choices, shorten
from segdeploy.metadata import MAX_CLASSES, ChannelOrder, Preprocess, ResizePolicy, default_class_names, default_palette
from segdeploy.sizes import MAX_SIDE

MAX_FACTORY_ARGS_CHARS = 100_000


class Convention(StrEnum):
    """Base preprocessing conventions: ImageNet statistics, [0, 1] pixels, or raw 0-255 pixels."""

    IMAGENET = "imagenet"
    ZERO_ONE = "zero-one"
    RAW = "raw"


BASES = {Convention.IMAGENET: Preprocess(),
         Convention.ZERO_ONE: Preprocess(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),
         Convention.RAW: Preprocess(pixel_scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))}


@dataclass(frozen=True)
class LabelConfig:
    """Labels and preprocessing for a model that carries none; None fields take the base convention's."""

    classes: str | None = None  # camvid | cityscapes | ade20k | voc | a class-list file
    num_classes: int | None = None
    preprocess: Convention = Convention.IMAGENET
    channel_order: ChannelOrder | None = None
    pixel_scale: float | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    resize_policy: ResizePolicy = ResizePolicy.STRETCH
    divisor: int = 32
    input_size: tuple[int, int] | None = None  # the eval size; required when the graph's H and W are dynamic
    ignore_index: int | None = None  # None: the class set's own (CamVid's void is 11), else 255

    def __post_init__(self) -> None:
        convert_choices(self, {"preprocess": (Convention, "--preprocess"),
                               "channel_order": (ChannelOrder, "--channel-order"),
                               "resize_policy": (ResizePolicy, "--resize-policy")})
        if self.num_classes is not None:
            check_range(self.num_classes, "--num-classes", low=1, high=MAX_CLASSES)
        check_range(self.divisor, "--divisor", low=1, high=MAX_SIDE)
        if self.pixel_scale is not None and not (math.isfinite(self.pixel_scale) and self.pixel_scale > 0):
            raise BadInputError(f"--pixel-scale must be a positive number, got {self.pixel_scale}")
        for name, values in (("--mean", self.mean), ("--std", self.std)):
            if values is not None and (len(values) != 3 or not all(math.isfinite(v) for v in values)):
                raise BadInputError(f"{name} takes three comma-separated numbers (one per channel), got "
                                    f"{len(values)} value(s)")
        if self.std is not None and min(self.std) <= 0:
            raise BadInputError(f"--std values must be > 0, got {','.join(f'{v:g}' for v in self.std)}")
        if self.ignore_index is not None:
            check_range(self.ignore_index, "--ignore-index", low=0, high=MAX_CLASSES)

    def preprocess_for(self, eval_size: tuple[int, int]) -> Preprocess:
        """The base convention with every override applied, at ``eval_size``."""
        base = BASES[Convention(self.preprocess)]
        return Preprocess(channel_order=self.channel_order or base.channel_order,
                          pixel_scale=base.pixel_scale if self.pixel_scale is None else self.pixel_scale,
                          mean=tuple(self.mean or base.mean), std=tuple(self.std or base.std),
                          resize_policy=ResizePolicy(self.resize_policy), eval_size=eval_size, divisor=self.divisor)

    def ignore(self) -> int:
        """The label id metrics ignore: ``ignore_index`` if given, else the class set's, else 255."""
        from segdeploy.data.class_sets import IGNORE_OF_SET

        if self.ignore_index is not None:
            return self.ignore_index
        return IGNORE_OF_SET.get((self.classes or "").lower(), 255)

    def labels(self, channels: int | None, what: str) -> tuple[tuple[str, ...], tuple[tuple[int, int, int], ...]]:
        """Class names and palette; ``channels`` is the class count the model shows (None for class ids),
        and must agree with ``--classes``/``--num-classes``; ``what`` names the output in the error."""
        from segdeploy.data.class_sets import resolve_classes

        if channels == 1:
            raise BadInputError(f"{what} has 1 channel: a single-logit (sigmoid) model; segdeploy's masks are the "
                                "argmax over 2 or more classes: export the model with two output channels")
        names, palette = resolve_classes(self.classes) if self.classes else (None, None)
        count = len(names) if names else self.num_classes
        if names and self.num_classes is not None and self.num_classes != len(names):
            raise BadInputError(f"--num-classes {self.num_classes} contradicts --classes {self.classes} "
                                f"({len(names)} classes)")
        if channels is not None and count is not None and channels != count:
            given = f"--classes {self.classes} has {count}" if names else f"--num-classes is {count}"
            raise BadInputError(f"{what} has {channels} classes (channels); {given}")
        count = count or channels
        if count is None:
            raise BadInputError(f"{what} holds class ids, not logits: give --classes or --num-classes")
        return names or default_class_names(count), palette or default_palette(count)


@dataclass(frozen=True)
class FactoryConfig:
    factory: str  # "package.module:function"
    factory_args: str = "{}"  # a JSON object: the function's keyword arguments
    weights: str | None = None  # .pt/.pth state dict or .safetensors; None: as the factory made it
    output_name: str | None = None  # dict key, "logits", or a tuple index; None: "out", "logits" or the first
    labels: LabelConfig = field(default_factory=LabelConfig)

    def __post_init__(self) -> None:
        module, _, function = self.factory.partition(":")
        if not module or not function.isidentifier():
            raise BadInputError(f"--model-factory takes package.module:function, got {shorten(self.factory, 60)!r}")
        if self.labels.input_size is None:
            raise BadInputError("--model-factory needs the eval size: give --input-size HxW")
