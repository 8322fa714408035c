"""Swin-Seg: a Swin Transformer encoder (Liu et al. 2021) with an FPN decoder.

Feature maps travel between blocks as (B, H, W, C) tensors, channels last, so every
reshape keeps channels as the innermost dimension. Any input H/W works: each block pads
to a multiple of its window, patch merging pads odd sizes, and the shifted-window mask
is computed from the padded size at run time (never baked in at trace time).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segdeploy.models.registry import ModelEntry, register_model
from segdeploy.sizes import round_up

MASK_VALUE = -100.0  # added to attention logits between tokens of different shifted regions


def window_partition(features: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) with H, W multiples of ``window`` -> (B * nW, window * window, C)."""
    batch, height, width, channels = features.shape
    tiles = features.view(batch, height // window, window, width // window, window, channels)
    return tiles.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, channels)


def window_reverse(windows: torch.Tensor, window: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: (B * nW, window * window, C) -> (B, H, W, C)."""
    channels = windows.shape[-1]
    tiles = windows.view(-1, height // window, width // window, window, window, channels)
    return tiles.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def shifted_window_mask(
    height: int, width: int, window: int, shift: int, device: torch.device
) -> torch.Tensor:
    """Attention mask (nW, N, N) for a map of padded size (height, width) rolled by ``shift``.

    Rows and columns fall into three regions each ([0, H-window), [H-window, H-shift),
    [H-shift, H)); tokens may attend only within their region pair. Built from arange
    comparisons so it follows symbolic sizes in an exported graph.
    """
    rows = torch.arange(height, device=device)
    cols = torch.arange(width, device=device)
    row_region = (rows >= height - window).long() + (rows >= height - shift).long()
    col_region = (cols >= width - window).long() + (cols >= width - shift).long()
    region = (row_region[:, None] * 3 + col_region[None, :])[None, :, :, None]
    region_windows = window_partition(region, window).squeeze(-1)  # (nW, N)
    different = region_windows[:, None, :] != region_windows[:, :, None]
    return different.float() * MASK_VALUE


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with relative position bias."""

    def __init__(self, dim: int, heads: int, window: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(
            torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ).flatten(1)
        relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        index = relative[..., 0] * (2 * window - 1) + relative[..., 1]
        self.register_buffer("relative_position_index", index, persistent=False)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """tokens (B * nW, N, C); mask (nW, N, N) or None -> (B * nW, N, C)."""
        windows, length, channels = tokens.shape
        qkv = self.qkv(tokens).reshape(windows, length, 3, self.heads, channels // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B * nW, heads, N, C / heads)
        attention = (query * self.scale) @ key.transpose(-2, -1)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        attention = attention + bias.view(length, length, -1).permute(2, 0, 1)[None]
        if mask is not None:
            num_windows = mask.shape[0]
            attention = attention.view(-1, num_windows, self.heads, length, length)
            attention = (attention + mask[None, :, None]).view(-1, self.heads, length, length)
        out = attention.softmax(dim=-1) @ value  # (B * nW, heads, N, C / heads)
        return self.proj(out.transpose(1, 2).reshape(windows, length, channels))


class DropPath(nn.Module):
    """Stochastic depth per sample; identity in eval mode."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        return x * x.new_empty(shape).bernoulli_(keep) / keep


class SwinBlock(nn.Module):
    """Window attention (shifted when ``shift`` > 0) and an MLP, each with a residual."""

    def __init__(
        self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float, drop_path: float
    ) -> None:
        super().__init__()
        self.window = window
        self.shift = shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, window)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """(B, H, W, C) -> (B, H, W, C); ``mask`` is the stage's shifted-window mask."""
        _, height, width, _ = features.shape
        window, shift = self.window, self.shift
        padded_h, padded_w = round_up(height, window), round_up(width, window)
        shifted = F.pad(self.norm1(features), (0, 0, 0, padded_w - width, 0, padded_h - height))
        if shift:
            shifted = torch.roll(shifted, shifts=(-shift, -shift), dims=(1, 2))
        attended = self.attn(window_partition(shifted, window), mask if shift else None)
        attended = window_reverse(attended, window, padded_h, padded_w)
        if shift:
            attended = torch.roll(attended, shifts=(shift, shift), dims=(1, 2))
        features = features + self.drop_path(attended[:, :height, :width, :])
        return features + self.drop_path(self.mlp(self.norm2(features)))


class SwinStage(nn.Module):
    """Blocks alternating plain and shifted windows; the shift mask is built once per stage."""

    def __init__(self, blocks: list[SwinBlock], window: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.window = window

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        height, width = features.shape[1], features.shape[2]
        mask = None
        if any(block.shift for block in self.blocks):
            shift = next(block.shift for block in self.blocks if block.shift)
            mask = shifted_window_mask(
                round_up(height, self.window), round_up(width, self.window), self.window, shift,
                features.device,
            )
        for block in self.blocks:
            features = block(features, mask)
        return features


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat (padding odd sizes) then linear 4C -> 2C."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        height, width = features.shape[1], features.shape[2]
        features = F.pad(features, (0, 0, 0, round_up(width, 2) - width, 0, round_up(height, 2) - height))
        merged = torch.cat(
            [
                features[:, 0::2, 0::2],
                features[:, 1::2, 0::2],
                features[:, 0::2, 1::2],
                features[:, 1::2, 1::2],
            ],
            dim=-1,
        )
        return self.reduction(self.norm(merged))


class SwinEncoder(nn.Module):
    """4x4 patch embedding and four stages; returns four NCHW maps at strides 4..32."""

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        depths: tuple[int, ...],
        heads: tuple[int, ...],
        window: int,
        mlp_ratio: float,
        drop_path_rate: float,
    ) -> None:
        super().__init__()
        self.patch_size = 4
        self.patch_embed = nn.Conv2d(in_channels, embed_dim, 4, stride=4)
        self.embed_norm = nn.LayerNorm(embed_dim)
        total = sum(depths)
        # Plain Python (not torch.linspace) so the model can be built on the meta device.
        rates = [drop_path_rate * index / max(1, total - 1) for index in range(total)]
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.out_norms = nn.ModuleList()
        self.channels = [embed_dim * 2**i for i in range(len(depths))]
        for index, (depth, num_heads) in enumerate(zip(depths, heads)):
            dim = self.channels[index]
            first = sum(depths[:index])
            blocks = [
                SwinBlock(dim, num_heads, window, window // 2 if b % 2 else 0, mlp_ratio, rates[first + b])
                for b in range(depth)
            ]
            self.stages.append(SwinStage(blocks, window))
            self.out_norms.append(nn.LayerNorm(dim))
            if index < len(depths) - 1:
                self.merges.append(PatchMerging(dim))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        features = self.embed_norm(self.patch_embed(images).permute(0, 2, 3, 1))
        outputs = []
        for index, stage in enumerate(self.stages):
            features = stage(features)
            outputs.append(self.out_norms[index](features).permute(0, 3, 1, 2).contiguous())
            if index < len(self.merges):
                features = self.merges[index](features)
        return outputs


def conv_bn_relu(in_channels: int, out_channels: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class FPNDecoder(nn.Module):
    """Feature pyramid: lateral 1x1, top-down sum, 3x3 smoothing, fuse all at stride 4."""

    def __init__(self, in_channels: list[int], dim: int, num_classes: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(conv_bn_relu(c, dim, 1) for c in in_channels)
        self.smooth = nn.ModuleList(conv_bn_relu(dim, dim, 3) for _ in in_channels)
        self.fuse = conv_bn_relu(dim * len(in_channels), dim, 3)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        laterals = [conv(f) for conv, f in zip(self.lateral, features)]
        for index in range(len(laterals) - 1, 0, -1):
            finer = laterals[index - 1]
            laterals[index - 1] = finer + F.interpolate(
                laterals[index], size=finer.shape[-2:], mode="bilinear", align_corners=False
            )
        finest = laterals[0].shape[-2:]
        pyramid = [
            F.interpolate(conv(p), size=finest, mode="bilinear", align_corners=False)
            for conv, p in zip(self.smooth, laterals)
        ]
        return self.classifier(self.fuse(torch.cat(pyramid, dim=1)))


class SwinSeg(nn.Module):
    """Swin encoder + FPN decoder; logits at the input size."""

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        embed_dim: int = 96,
        depths: tuple[int, ...] | list[int] = (2, 2, 6, 2),
        heads: tuple[int, ...] | list[int] = (3, 6, 12, 24),
        window: int = 7,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.1,
        decoder_dim: int = 128,
    ) -> None:
        super().__init__()
        depths, heads = tuple(depths), tuple(heads)
        if len(depths) != len(heads):
            raise ValueError("depths and heads must have the same length")
        self.encoder = SwinEncoder(
            in_channels, embed_dim, depths, heads, window, mlp_ratio, drop_path_rate
        )
        self.decoder = FPNDecoder(self.encoder.channels, decoder_dim, num_classes)
        # Sizes that need no padding at any stage: patch 4, 2x per merge, window multiple.
        self.size_divisor = 4 * 2 ** (len(depths) - 1) * window

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        # One pad to the deepest stride makes every stage size a multiple of one symbol,
        # which keeps the exporter's shape reasoning (and so export time) small.
        stride = self.encoder.patch_size * 2 ** (len(self.encoder.stages) - 1)
        padded = F.pad(images, (0, round_up(width, stride) - width, 0, round_up(height, stride) - height))
        logits = self.decoder(self.encoder(padded))
        logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :height, :width]


def _swin(name: str, description: str, test_only: bool = False, **overrides) -> None:
    config = {
        "in_channels": 3,
        "num_classes": 2,
        "embed_dim": 96,
        "depths": [2, 2, 6, 2],
        "heads": [3, 6, 12, 24],
        "window": 7,
        "mlp_ratio": 4.0,
        "drop_path_rate": 0.1,
        "decoder_dim": 128,
        **overrides,
    }
    register_model(ModelEntry(name, "swin_seg", SwinSeg, config, description, test_only))


_swin("swin_seg_t", "Swin-T encoder (embed 96, depths 2-2-6-2) + FPN decoder")
_swin(
    "swin_seg_nano",
    "Swin encoder (embed 32, depths 2-2-2-2) + FPN decoder, trainable on a CPU",
    embed_dim=32,
    depths=[2, 2, 2, 2],
    heads=[1, 2, 4, 8],
    decoder_dim=64,
    drop_path_rate=0.05,
)
_swin(
    "swin_seg_tiny",
    "tiny test variant",
    test_only=True,
    embed_dim=8,
    depths=[2, 2, 2, 2],
    heads=[1, 1, 2, 2],
    decoder_dim=8,
    drop_path_rate=0.0,
)
