"""Parameter counts and FLOPs of a model at a given input size."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


@dataclass(frozen=True)
class ModelProfile:
    params: int
    gflops: float  # 2 x multiply-accumulates, counted by torch's FlopCounterMode
    input_size: tuple[int, int]


def profile_model(model: nn.Module, input_size: tuple[int, int], in_channels: int = 3) -> ModelProfile:
    """Count parameters and forward FLOPs for one image of ``input_size`` (H, W)."""
    params = sum(p.numel() for p in model.parameters())
    device = next(model.parameters()).device  # meta-device models count without weights
    images = torch.zeros(1, in_channels, *input_size, device=device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.eval()(images)
    return ModelProfile(params, counter.get_total_flops() / 1e9, tuple(input_size))
