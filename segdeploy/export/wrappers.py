"""The module that gets exported: optional fused normalisation, the model, optional argmax."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segdeploy.data.preprocess import normalization_affine
from segdeploy.metadata import Preprocess

MAX_MASK_CLASSES = 256  # class ids must fit in uint8


class DeployGraph(nn.Module):
    """``[uint8 image -> normalise] -> model -> [upsample -> argmax -> uint8 mask]``.

    With ``fuse_normalize`` the input is uint8 in the model's channel order, NCHW or NHWC.
    """

    def __init__(
        self, model: nn.Module, pre: Preprocess, fuse_normalize: bool, layout: str, with_argmax: bool,
        upsample: bool = False,
    ) -> None:
        super().__init__()
        self.model = model
        self.upsample = upsample  # logits below the input resolution: bilinear to it (half-pixel centres)
        self.fuse_normalize = fuse_normalize
        self.channels_last = layout == "NHWC"
        self.with_argmax = with_argmax
        scale, offset = normalization_affine(pre)
        self.register_buffer("scale", torch.from_numpy(scale).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("offset", torch.from_numpy(offset).view(1, 3, 1, 1), persistent=False)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        if self.fuse_normalize:
            if self.channels_last:
                images = images.permute(0, 3, 1, 2)
            images = images.float() * self.scale + self.offset
        logits = self.model(images)
        if self.upsample:
            logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return logits

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.logits(images)
        if self.with_argmax:
            return logits.argmax(dim=1).to(torch.uint8)
        return logits
