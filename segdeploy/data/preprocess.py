"""The one preprocessing path: images as OpenCV reads them -> model input, and back.

Driven only by the metadata's preprocessing contract (channel order, pixel scale,
mean/std, resize policy, eval size, divisor); nothing else in segdeploy normalises images.
Calibration, runtime, bench, predict and train all call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.metadata import ChannelOrder, OutputKind, Preprocess, ResizePolicy, TensorIO
from segdeploy.sizes import round_up


@dataclass(frozen=True)
class Placement:
    """Where an image went inside the model input, to undo it on the mask."""

    original_size: tuple[int, int]  # H, W of the image as given
    content_size: tuple[int, int]  # H, W of the resized image inside the input
    input_size: tuple[int, int]  # H, W of the model input (content + padding at bottom/right)


def to_bgr_uint8(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Bring an OpenCV-style array to HxWx3 uint8 BGR (gray -> 3 channels, BGRA -> BGR)."""
    if image.dtype != np.uint8:
        raise BadInputError(f"{name}: {image.dtype} images are not supported; convert to 8-bit")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image[..., 0], cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise BadInputError(f"{name}: unsupported image shape {image.shape}")


def normalize(images_bgr: np.ndarray, pre: Preprocess) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 3, H, W) float32 normalised per the contract."""
    images = images_bgr[..., ::-1] if pre.channel_order == ChannelOrder.RGB else images_bgr
    scale, offset = normalization_affine(pre)
    batch = images.astype(np.float32) * scale + offset
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))


def normalization_affine(pre: Preprocess) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``scale, offset`` with ``normalised = pixel * scale + offset``.

    One multiply-add instead of scale, subtract, divide; also what a fused graph bakes in.
    """
    std = np.asarray(pre.std, dtype=np.float32)
    mean = np.asarray(pre.mean, dtype=np.float32)
    return np.float32(pre.pixel_scale) / std, -mean / std


MAX_INPUT_PIXELS = 4096 * 4096  # a larger native-size network input would need GBs of activations


def plan_placement(original_size: tuple[int, int], pre: Preprocess) -> Placement:
    """Decide content and input sizes for an image of ``original_size`` under ``pre``.

    The ``keep`` policy feeds native sizes; above MAX_INPUT_PIXELS that is refused (tile instead).
    """
    height, width = original_size
    eval_h, eval_w = pre.eval_size
    if pre.resize_policy == ResizePolicy.STRETCH:
        return Placement(original_size, (eval_h, eval_w), (eval_h, eval_w))
    if pre.resize_policy == ResizePolicy.LETTERBOX:
        scale = min(eval_h / height, eval_w / width)
        content = (max(1, round(height * scale)), max(1, round(width * scale)))
        return Placement(original_size, content, (eval_h, eval_w))
    divisor = pre.divisor
    padded = (round_up(height, divisor), round_up(width, divisor))
    if padded[0] * padded[1] > MAX_INPUT_PIXELS:
        raise BadInputError(f"a {height}x{width} image is too large for whole-image inference with this native-size "
                            "model (limit 4096x4096); use tiling: --tile HxW or Segmenter(tile=...)")
    return Placement(original_size, original_size, padded)


def resize_for_input(image_bgr: np.ndarray, placement: Placement) -> np.ndarray:
    """Resize (bilinear; area when shrinking) the image to ``placement.content_size``."""
    height, width = placement.content_size
    if image_bgr.shape[:2] == (height, width):
        return image_bgr
    shrinking = height * width < image_bgr.shape[0] * image_bgr.shape[1]
    return cv2.resize(image_bgr, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def preprocess(image: np.ndarray, pre: Preprocess) -> tuple[np.ndarray, Placement]:
    """One image (gray, BGR or BGRA uint8) -> (1, 3, H, W) float32 model input and its placement."""
    image = to_bgr_uint8(image)
    placement = plan_placement(image.shape[:2], pre)
    content = normalize(resize_for_input(image, placement)[None], pre)
    return pad_to(content, placement.input_size), placement


def prepare(image: np.ndarray, pre: Preprocess, io: TensorIO) -> tuple[np.ndarray, Placement]:
    """One image -> what the graph takes (``io``): normalised float32 NCHW, or for graphs that
    fuse normalisation uint8 in the model's channel order (NCHW or NHWC), padded with the mean
    colour; and its placement."""
    if io.input_dtype == "float32":
        return preprocess(image, pre)
    image = to_bgr_uint8(image)
    placement = plan_placement(image.shape[:2], pre)
    content = resize_for_input(image, placement)
    height, width = placement.input_size
    mean_bgr = np.asarray(pre.mean, np.float32) / np.float32(pre.pixel_scale)
    if pre.channel_order == ChannelOrder.RGB:
        mean_bgr = mean_bgr[::-1]
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[...] = np.clip(np.round(mean_bgr), 0, 255).astype(np.uint8)
    canvas[: content.shape[0], : content.shape[1]] = content
    return graph_pixels(canvas[None], pre, io), placement


def graph_pixels(images_bgr: np.ndarray, pre: Preprocess, io: TensorIO) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> the graph input: normalised float32 NCHW, or uint8 in the
    model's channel order and ``io.input_layout`` for graphs that fuse normalisation."""
    if io.input_dtype == "float32":
        return normalize(images_bgr, pre)
    ordered = images_bgr[..., ::-1] if pre.channel_order == ChannelOrder.RGB else images_bgr
    if io.input_layout == "NCHW":
        ordered = ordered.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(ordered)


def pad_to(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Zero-pad (N, C, h, w) at the bottom/right to ``size`` (zero = the mean colour after normalising)."""
    pad_h, pad_w = size[0] - batch.shape[2], size[1] - batch.shape[3]
    if pad_h == 0 and pad_w == 0:
        return batch
    return np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w)))


def model_output(output: np.ndarray, io: TensorIO) -> np.ndarray:
    """A batch's raw output as post-processing takes it: (N, C, h, w) logits or (N, h, w) class ids (a class
    map the graph gives as (N, 1, h, w) loses its channel axis)."""
    output = np.asarray(output)
    if io.output == OutputKind.MASK and output.ndim == 4 and output.shape[1] == 1:
        return output[:, 0]
    return output


def postprocess(output: np.ndarray, placement: Placement) -> np.ndarray:
    """One model output ((C, H, W) logits or (H, W) class ids) -> (H0, W0) uint8 mask at the original size.

    Logits with NaN or Inf are a failed check, never silently class 0.
    """
    # One float32 reduction (half the cost of float64; no overflow for logits, float16 ones included).
    with np.errstate(over="ignore", invalid="ignore"):  # the sum overflows or is NaN exactly when we refuse
        finite = output.ndim != 3 or np.isfinite(output.sum(dtype=np.float32))
    if not finite:
        raise CheckFailedError("the model output contains NaN or Inf; the artifact or its input is broken "
                               "(an FP16 overflow, corrupt weights)")
    output = to_input_resolution(output, placement.input_size)
    classes = output.argmax(0) if output.ndim == 3 else output
    content_h, content_w = placement.content_size
    classes = classes[:content_h, :content_w].astype(np.uint8)
    height, width = placement.original_size
    if classes.shape != (height, width):
        # NEAREST_EXACT samples pixel centres; plain INTER_NEAREST shifts label maps by up to a pixel.
        classes = cv2.resize(classes, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    return classes


def resize_logits(logits: np.ndarray, placement: Placement) -> np.ndarray:
    """(C, h, w) logits (at any output stride) -> (C, H0, W0) at the original size (bilinear), padding removed."""
    content_h, content_w = placement.content_size
    cropped = to_input_resolution(logits, placement.input_size)[:, :content_h, :content_w].transpose(1, 2, 0)
    height, width = placement.original_size
    resized = cv2.resize(np.ascontiguousarray(cropped), (width, height), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(height, width, -1).transpose(2, 0, 1)


CV_MAX_CHANNELS = 512  # OpenCV resizes at most this many channels per call


def to_input_resolution(output: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """A model output below the input resolution (output stride > 1, or a fixed output size), brought to
    ``input_size``: (C, h, w) logits bilinearly with half-pixel centres (as ``F.interpolate(...,
    align_corners=False)`` in the training frameworks), (h, w) class ids nearest at pixel centres.
    Outputs already at ``input_size`` are returned as they are."""
    height, width = input_size
    if output.shape[-2:] == (height, width):
        return output
    if output.ndim == 2:  # OpenCV resizes no 64-bit integers: class ids fit int32 (MAX_CLASSES)
        ids = output if output.dtype in (np.uint8, np.uint16, np.int16, np.int32) else output.astype(np.int32)
        return cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    logits = np.ascontiguousarray(output.astype(np.float32, copy=False).transpose(1, 2, 0))
    parts = [cv2.resize(logits[..., start:start + CV_MAX_CHANNELS], (width, height), interpolation=cv2.INTER_LINEAR)
             .reshape(height, width, -1) for start in range(0, logits.shape[2], CV_MAX_CHANNELS)]
    return np.concatenate(parts, axis=2).transpose(2, 0, 1)
