"""U-Net (Ronneberger et al. 2015) with batch norm, for any input height and width.

The input is zero-padded to a multiple of ``2**depth`` inside ``forward`` and the logits
are cropped back, so the exported graph accepts any H/W with dynamic shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segdeploy.models.registry import ModelEntry, register_model
from segdeploy.sizes import round_up


class DoubleConv(nn.Sequential):
    """(3x3 conv, batch norm, ReLU) twice."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """Encoder of ``depth`` max-pool stages, decoder of transposed convs with skip concat."""

    def __init__(
        self, in_channels: int = 3, num_classes: int = 2, base_channels: int = 64, depth: int = 4
    ) -> None:
        super().__init__()
        if depth < 1 or base_channels < 1:
            raise ValueError("depth and base_channels must be >= 1")
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.depth = depth
        self.size_divisor = 2**depth
        self.stem = DoubleConv(in_channels, widths[0])
        self.down = nn.ModuleList(DoubleConv(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.fuse = nn.ModuleList(
            DoubleConv(2 * widths[i], widths[i]) for i in reversed(range(depth))
        )
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        # Always pad (possibly by 0): a shape-dependent branch would specialise the export.
        pad_h = round_up(height, self.size_divisor) - height
        pad_w = round_up(width, self.size_divisor) - width
        features = self.stem(F.pad(images, (0, pad_w, 0, pad_h)))
        skips = []
        for down in self.down:
            skips.append(features)
            features = down(F.max_pool2d(features, 2))
        for up, fuse, skip in zip(self.up, self.fuse, reversed(skips)):
            features = fuse(torch.cat([up(features), skip], dim=1))
        return self.head(features)[..., :height, :width]


def _unet(name: str, description: str, test_only: bool = False, **defaults) -> None:
    config = {"in_channels": 3, "num_classes": 2, "base_channels": 64, "depth": 4, **defaults}
    register_model(ModelEntry(name, "unet", UNet, config, description, test_only))


_unet("unet", "classic U-Net, base 64 channels (31 M parameters)")
_unet("unet_small", "U-Net, base 16 channels", base_channels=16)
_unet("unet_nano", "U-Net, base 8 channels (distillation student)", base_channels=8)
_unet("unet_tiny", "tiny test variant", test_only=True, base_channels=4, depth=2)
