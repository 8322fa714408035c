"""``Segmenter``: one object over every backend, one pre/post-processing path.

Thread safety: one Segmenter may be shared by threads; calls into its backend are
serialised by a lock (ONNX Runtime sessions are thread-safe, OpenVINO infer requests and
CUDA streams are not), so results are always right and throughput is one call at a time.
Servers that want parallel calls use ``SegmenterPool``: several Segmenters, each with its
own backend resources.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.data.preprocess import Placement, model_output, postprocess, prepare, resize_logits, to_bgr_uint8
from segdeploy.errors import BadInputError, SegdeployWarning, UsageError
from segdeploy.isa import isa_class
from segdeploy.metadata import ArtifactMeta, OutputKind
from segdeploy.runtime.artifacts import BackendOptions, backend_for, make_backend
from segdeploy.runtime.tiling import tiled_mask
from segdeploy.sizes import parse_hw


class Segmenter:
    """Segment images with any artifact: ``predict(image) -> (H, W) uint8`` class ids.

    ``backend``: auto (by file type), torch, onnxruntime, openvino or tensorrt. ``device``:
    auto, cpu or cuda. ``tile="HxW"`` (with ``overlap``) runs sliding windows for large
    images. ``input_size`` replaces the metadata's eval size (stretch/letterbox policies).
    ``options`` are BackendOptions (threads, precision, hint, autocast, channels_last, optimize, cuda_graph).
    Backend resources are acquired on first use or ``with Segmenter(...)``; ``close()``
    releases them.
    """

    def __init__(self, artifact: str | os.PathLike, backend: str = "auto", device: str = "auto",
                 tile: str | tuple[int, int] | None = None, overlap: float = 0.25,
                 input_size: str | tuple[int, int] | None = None, **options) -> None:
        self.artifact = Path(artifact)
        self.backend_name = backend_for(self.artifact, backend)
        self.meta = read_artifact_meta(self.artifact)
        if input_size is not None:  # run a dynamic artifact at another size than its eval size
            size = parse_hw(input_size) if isinstance(input_size, str) else tuple(input_size)
            self.meta = self.meta.replace(preprocess=dataclasses.replace(self.meta.preprocess, eval_size=size))
        try:
            backend_options = BackendOptions(**options)
        except TypeError as exc:
            raise UsageError(f"unknown Segmenter option: {exc}") from exc
        self.backend = make_backend(self.artifact, self.backend_name, device, backend_options)
        self.tile = parse_hw(tile) if isinstance(tile, str) else tile
        if not 0 <= overlap < 1:
            raise BadInputError(f"overlap must be in [0, 1), got {overlap}")
        self.overlap = overlap
        self._lock = threading.Lock()
        if (risk := isa_risk(self.meta)) is not None:
            warnings.warn(risk, SegdeployWarning, stacklevel=2)

    # -- resources -------------------------------------------------------------------------
    def __enter__(self) -> Segmenter:
        with self._lock:
            self.backend.activate()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self.backend.close()

    # -- inference -------------------------------------------------------------------------
    @property
    def has_logits(self) -> bool:
        return self.meta.io.output == OutputKind.LOGITS

    def run(self, batch: np.ndarray) -> np.ndarray:
        """The raw backend call on a prepared batch (what ``prepare`` returns)."""
        with self._lock:
            output = model_output(self.backend.activate().infer(batch), self.meta.io)
        self._check_output(output, batch)
        return output

    def _check_output(self, output: np.ndarray, batch: np.ndarray) -> None:
        """The output must be what the metadata promises for this batch: (N, classes, H, W) logits or (N, H, W)
        class ids. A damaged artifact can compile and run yet return another shape (an empty axis, a channel
        count from a flipped weight) that would fail later as an IndexError."""
        expected = self.meta.output_shape(batch.shape)
        if getattr(output, "shape", None) != expected:
            raise BadInputError(f"the model's output is {getattr(output, 'shape', type(output).__name__)}, not "
                                f"{expected} as its metadata promises for this input: the artifact is damaged or "
                                "its metadata belongs to another model")

    def predict(self, image: np.ndarray) -> np.ndarray:
        """(H, W) uint8 class ids at the image's size (gray, BGR or BGRA uint8 in)."""
        image = to_bgr_uint8(image)
        if self.tile and (image.shape[0] > self.tile[0] or image.shape[1] > self.tile[1]):
            return tiled_mask(image, self.tile, self.overlap, self.meta.num_classes, self._tile_scores)
        batch, placement = prepare(image, self.meta.preprocess, self.meta.io)
        return postprocess(self.run(batch)[0], placement)

    def predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        """Masks for images of any sizes, in order.

        Images that map to the same input size run as one batch when the artifact takes
        batches (dynamic exports, checkpoints); otherwise, and with tiling, one by one.
        """
        if self.tile or not self._takes_batches():
            return [self.predict(image) for image in images]
        prepared = [prepare(image, self.meta.preprocess, self.meta.io) for image in images]
        masks: list[np.ndarray | None] = [None] * len(images)
        for indices in _group_by_input_size([placement for _, placement in prepared]).values():
            outputs = self.run(np.concatenate([prepared[i][0] for i in indices]))
            for i, output in zip(indices, outputs):
                masks[i] = postprocess(output, prepared[i][1])
        return masks

    def logits(self, image: np.ndarray) -> np.ndarray:
        """(C, H, W) float32 logits at the image's size; artifacts that output class ids have none."""
        if not self.has_logits:
            raise BadInputError(f"{self.artifact.name} outputs class ids (exported with --with-argmax); "
                                "it has no logits")
        batch, placement = prepare(to_bgr_uint8(image), self.meta.preprocess, self.meta.io)
        return resize_logits(self.run(batch)[0].astype(np.float32), placement)

    def overlay(self, image: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
        """The image (BGR uint8) blended with the mask coloured by the metadata's palette (RGB)."""
        image = to_bgr_uint8(image)
        palette_bgr = np.asarray(self.meta.palette, np.uint8)[:, ::-1]
        colours = palette_bgr[np.minimum(mask, len(palette_bgr) - 1)]
        return cv2.addWeighted(image, 1 - alpha, colours, alpha, 0)

    def _tile_scores(self, crop: np.ndarray) -> np.ndarray:
        batch, placement = prepare(crop, self.meta.preprocess, self.meta.io)
        output = self.run(batch)[0]
        if self.has_logits:
            return resize_logits(output.astype(np.float32), placement)
        classes = postprocess(output, placement)
        return (np.arange(self.meta.num_classes)[:, None, None] == classes[None]).astype(np.float32)

    def _takes_batches(self) -> bool:
        """Whether the graph's batch dimension is dynamic, as the runtime reports its input."""
        with self._lock:
            shape = self.backend.activate().input_spec.shape
        return shape is None or shape[0] is None


def isa_risk(meta: ArtifactMeta) -> str | None:
    """Why a CPU INT8 artifact may lose accuracy on this CPU: made non-portable (``--isa native``) and
    gated on another CPU class; None when it is portable or was gated on this class of CPU."""
    record = next((r for r in reversed(meta.history) if r.get("stage") == "quantize"), None)
    if record is None or record.get("portable") is not False or record.get("isa_class") in (None, isa_class()):
        return None
    return (f"this INT8 artifact was made for {record['isa_class']} CPUs (--isa native) and gated there; this CPU "
            f"is {isa_class()}, where its 8-bit weights can saturate and lose accuracy: re-quantize it with "
            "the portable default (segdeploy quantize ... --isa portable)")


def _group_by_input_size(placements: list[Placement]) -> dict[tuple[int, int], list[int]]:
    groups: dict[tuple[int, int], list[int]] = {}
    for index, placement in enumerate(placements):
        groups.setdefault(placement.input_size, []).append(index)
    return groups


class SegmenterPool:
    """``size`` Segmenters over one artifact for servers: each thread borrows one at a time.

    ``with pool.get() as segmenter: segmenter.predict(image)``; calls on different
    Segmenters run in parallel (each has its own session or infer request).
    """

    def __init__(self, artifact: str | os.PathLike, size: int = 2, **segmenter_options) -> None:
        if size < 1:
            raise BadInputError(f"pool size must be >= 1, got {size}")
        self._members = [Segmenter(artifact, **segmenter_options) for _ in range(size)]
        self._idle: queue.Queue[Segmenter] = queue.Queue()
        for member in self._members:
            self._idle.put(member)

    @contextmanager
    def get(self) -> Iterator[Segmenter]:
        member = self._idle.get()
        try:
            yield member
        finally:
            self._idle.put(member)

    def predict(self, image: np.ndarray) -> np.ndarray:
        with self.get() as segmenter:
            return segmenter.predict(image)

    def close(self) -> None:
        for member in self._members:
            member.close()

    def __enter__(self) -> SegmenterPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
