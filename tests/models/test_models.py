import numpy as np
import pytest
import torch

from segdeploy.errors import BadInputError
from segdeploy.models import create_model, list_models, model_config
from segdeploy.models.swin_seg import SwinBlock, shifted_window_mask, window_partition, window_reverse


@pytest.mark.parametrize("name", ["unet_tiny", "swin_seg_tiny"])
@pytest.mark.parametrize("size", [(360, 480), (100, 130), (37, 61), (1, 1)])
def test_any_size_gives_logits_at_input_size(name, size):
    model = create_model(name, num_classes=4).eval()
    with torch.no_grad():
        logits = model(torch.randn(2, 3, *size))
    assert logits.shape == (2, 4, *size)
    assert torch.isfinite(logits).all()


def test_registry_lists_presets_and_hides_test_variants():
    assert {"unet", "unet_small", "swin_seg_t", "swin_seg_nano"} <= set(list_models())
    assert "unet_tiny" not in list_models()
    assert "unet_tiny" in list_models(include_test=True)


def test_registry_rejects_unknown_names_and_options():
    with pytest.raises(BadInputError, match="unknown architecture"):
        create_model("resnet")
    with pytest.raises(BadInputError, match="no option"):
        model_config("unet", widht=3)
    with pytest.raises(BadInputError, match="num_classes"):
        create_model("unet_tiny", num_classes=0)


def test_preset_sizes_match_the_specification():
    counts = {name: sum(p.numel() for p in create_model(name).parameters())
              for name in ("unet", "unet_small", "swin_seg_nano")}
    assert 30e6 < counts["unet"] < 32e6  # the classic U-Net
    assert 2e6 <= counts["swin_seg_nano"] <= 3e6
    assert counts["unet_small"] < counts["unet"] / 10


def test_window_partition_keeps_channels_with_their_pixel():
    features = torch.arange(2 * 14 * 21 * 3, dtype=torch.float32).view(2, 14, 21, 3)
    windows = window_partition(features, 7)
    assert windows.shape == (2 * 2 * 3, 49, 3)
    # Window (batch 1, row 1, col 2), token (r=3, c=4) is pixel (7+3, 14+4) of image 1.
    window_index = 1 * 6 + 1 * 3 + 2
    assert torch.equal(windows[window_index, 3 * 7 + 4], features[1, 10, 18])
    assert torch.equal(window_reverse(windows, 7, 14, 21), features)


def _reference_mask(height, width, window, shift):
    """The Swin paper's construction: label regions by slices, then compare."""
    image = np.zeros((height, width), np.int64)
    label = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            image[hs, ws] = label
            label += 1
    tiles = image.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(-1, window * window)
    return np.where(tiles[:, None, :] != tiles[:, :, None], -100.0, 0.0)


@pytest.mark.parametrize("height,width", [(14, 21), (28, 28), (7, 14)])
def test_shift_mask_matches_the_slice_construction(height, width):
    mask = shifted_window_mask(height, width, 7, 3, torch.device("cpu")).numpy()
    np.testing.assert_array_equal(mask, _reference_mask(height, width, 7, 3))


def test_shift_mask_follows_the_padded_size_at_run_time():
    # Same model, two sizes: masks differ, so nothing about size may be cached.
    small = shifted_window_mask(14, 14, 7, 3, torch.device("cpu"))
    large = shifted_window_mask(21, 28, 7, 3, torch.device("cpu"))
    assert small.shape == (4, 49, 49) and large.shape == (12, 49, 49)


def _block_output_change(shift, changed_at, observed_at):
    torch.manual_seed(0)
    block = SwinBlock(dim=8, heads=2, window=7, shift=shift, mlp_ratio=2.0, drop_path=0.0).eval()
    features = torch.randn(1, 14, 14, 8)
    changed = features.clone()
    # A random vector: a constant offset would be erased by LayerNorm.
    changed[0, changed_at[0], changed_at[1]] += 5.0 * torch.randn(8)
    mask = shifted_window_mask(14, 14, 7, shift, features.device) if shift else None
    with torch.no_grad():
        before, after = block(features, mask), block(changed, mask)
    return (before - after)[0, observed_at[0], observed_at[1]].abs().max().item()


def test_plain_window_attention_stays_inside_its_window():
    # A tokens/channels reshape mix-up would leak between windows.
    assert _block_output_change(0, (10, 10), (0, 0)) == 0.0
    assert _block_output_change(0, (6, 6), (0, 0)) > 1e-3


def test_shifted_window_mask_blocks_wrapped_around_tokens():
    # The roll brings the bottom-right corner next to the top-left one; the mask must
    # keep them apart, while tokens of the same shifted window do interact.
    assert _block_output_change(3, (13, 13), (0, 0)) == 0.0
    assert _block_output_change(3, (5, 5), (8, 8)) > 1e-3
