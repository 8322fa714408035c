"""Third-party-style segmentation models for bring-your-own-model (README "Your own model",
benchmarks/byo.py, tests/export): built by factories, as a user's own code builds theirs.

- ``segformer``: Hugging Face transformers' SegFormer (MiT-b0 by default, random weights, no download);
  its output is an object with ``.logits`` at stride 4.
- ``deeplab_like``: a DeepLabV3-style network as torchvision writes them (a strided backbone, an ASPP head
  of parallel dilated convolutions and image pooling, an auxiliary head) predicting at output stride 8
  and returning ``{"out": logits, "aux": aux_logits}``, without upsampling to the input.
- ``two_heads``: a tuple (main, auxiliary), as many papers' repositories return.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MIT_B0 = {"hidden_sizes": [32, 64, 160, 256], "depths": [2, 2, 2, 2], "num_attention_heads": [1, 2, 5, 8],
          "decoder_hidden_size": 256}
TINY = {"hidden_sizes": [8, 16, 32, 64], "depths": [1, 1, 1, 1], "num_attention_heads": [1, 1, 1, 1],
        "decoder_hidden_size": 16}


def segformer(num_labels: int = 11, size: str = "b0") -> nn.Module:
    """SegformerForSemanticSegmentation with random weights: ``size`` b0 (MiT-b0) or tiny (for tests)."""
    from transformers import SegformerConfig, SegformerForSemanticSegmentation

    torch.manual_seed(0)
    config = SegformerConfig(num_labels=num_labels, **(MIT_B0 if size == "b0" else TINY))
    return SegformerForSemanticSegmentation(config)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASPP(nn.Module):
    def __init__(self, cin: int, cout: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        self.branches = nn.ModuleList([nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                                                     nn.ReLU(inplace=True))]
                                      + [_conv(cin, cout, dilation=rate) for rate in rates])
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.ReLU(inplace=True))
        self.project = nn.Sequential(nn.Conv2d(cout * (len(rates) + 2), cout, 1, bias=False), nn.BatchNorm2d(cout),
                                     nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.interpolate(self.pool(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.project(torch.cat([branch(x) for branch in self.branches] + [pooled], dim=1))


class DeepLabLike(nn.Module):
    def __init__(self, num_classes: int = 5, width: int = 8, rates: tuple[int, ...] = (2, 4)) -> None:
        super().__init__()
        self.backbone = nn.Sequential(_conv(3, width, 2), _conv(width, width * 2, 2), _conv(width * 2, width * 4, 2),
                                      _conv(width * 4, width * 4, dilation=2))
        self.head = nn.Sequential(ASPP(width * 4, width * 4, tuple(rates)), nn.Conv2d(width * 4, num_classes, 1))
        self.aux = nn.Conv2d(width * 4, num_classes, 1)

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.backbone(images)
        return {"out": self.head(features), "aux": self.aux(features)}


def deeplab_like(num_classes: int = 5, width: int = 8, rates: list[int] | None = None) -> DeepLabLike:
    """The factory ``segdeploy export --model-factory benchmarks.byo_models:deeplab_like`` calls."""
    torch.manual_seed(0)
    return DeepLabLike(num_classes, width, tuple(rates or (2, 4)))


class TwoHeads(nn.Module):
    """Returns a tuple (main, auxiliary), as many papers' repositories do."""

    def __init__(self, num_classes: int = 5) -> None:
        super().__init__()
        self.body = _conv(3, 8, 2)
        self.main, self.aux = nn.Conv2d(8, num_classes, 1), nn.Conv2d(8, num_classes, 1)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(images)
        return self.main(features), self.aux(features)


def two_heads(num_classes: int = 5) -> TwoHeads:
    torch.manual_seed(1)
    return TwoHeads(num_classes)
