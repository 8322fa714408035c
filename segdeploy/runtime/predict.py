"""Segment image files, folders, videos and ``.txt`` lists of them with a Segmenter and write the results.

Images: ``OUT/<stem>.png`` class map (palette PNG with the metadata's colours, or raw
class ids) and with ``overlay`` ``OUT/<stem>_overlay.jpg``. Videos: ``OUT/<stem>_overlay.mp4``
(the blended frames; always written) and with ``frame_masks`` ``OUT/<stem>/<frame>.png``.
Every file is written to a temporary name in ``OUT`` and renamed when complete; ``OUT`` is
created with the first result. A failure stops the run: results of the inputs before it stay
(each complete), nothing of the failing one is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from segdeploy.data.datasets import IMAGE_SUFFIXES
from segdeploy.data.images import opencv_quiet, read_image
from segdeploy.data.videos import Video
from segdeploy.errors import BadInputError, check_range, convert_choices, library_reason, printable
from segdeploy.fileio import atomic_output, atomic_write_bytes
from segdeploy.runtime.encoding import MaskFormat, encode_image, encode_mask
from segdeploy.runtime.segmenter import Segmenter

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"}
LIST_SUFFIX = ".txt"  # a text file of input paths


@dataclass(frozen=True)
class PredictConfig:
    overlay: bool = False  # also write blended images
    alpha: float = 0.5
    mask_format: MaskFormat = MaskFormat.PALETTE
    frame_masks: bool = False  # videos: one mask PNG per frame as well

    def __post_init__(self) -> None:
        convert_choices(self, {"mask_format": (MaskFormat, "--mask-format")})
        check_range(self.alpha, "--alpha", low=0.0, high=1.0)


@dataclass(frozen=True)
class PredictReport:
    images: int
    videos: int
    frames: int  # video frames segmented
    written: tuple[str, ...]
    seconds: float

    @property
    def frames_per_second(self) -> float:
        return (self.images + self.frames) / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {"images": self.images, "videos": self.videos, "frames": self.frames, "written": list(self.written),
                "seconds": self.seconds, "frames_per_second": self.frames_per_second}


def collect_inputs(inputs: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """(images, videos) named by ``inputs``: files, folders (not recursed) and ``.txt`` lists of them."""
    images, videos = [], []
    for path in _expand_lists(inputs):
        if path.is_dir():
            known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in known)
            if not found:
                raise BadInputError(f"{path} holds no images or videos ({', '.join(sorted(IMAGE_SUFFIXES))}, ...)")
        elif path.is_file():
            found = [path]
        else:
            raise BadInputError(f"input not found: {printable(str(path))}")
        for file in found:
            suffix = file.suffix.lower()
            if suffix in VIDEO_SUFFIXES:
                videos.append(file)
            elif suffix in IMAGE_SUFFIXES:
                images.append(file)
            else:
                raise BadInputError(f"{file}: not an image or video file type")
    return images, videos


def _expand_lists(inputs: list[str | Path]) -> list[Path]:
    """``inputs`` with each ``.txt`` file replaced by the paths it lists: one a line, relative to its folder
    (blank lines skipped); a list names files and folders, not other lists."""
    expanded = []
    for raw in inputs:
        path = Path(raw)
        if path.suffix.lower() != LIST_SUFFIX or not path.is_file():
            expanded.append(path)
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{path}: cannot read it as a list of paths ({library_reason(exc)})") from exc
        listed = [path.parent / line.strip() for line in lines if line.strip()]
        if not listed:
            raise BadInputError(f"{path} lists no paths (one image, video or folder a line)")
        if nested := next((item for item in listed if item.suffix.lower() == LIST_SUFFIX), None):
            raise BadInputError(f"{path} names another list, {printable(str(nested))}; lists do not nest")
        expanded.extend(listed)
    return expanded


def _count_frames(images: list[Path], videos: list[Path]) -> int:
    """Images plus the frame counts videos declare (for a progress total); a video that cannot be opened
    is refused here, before anything is written."""
    total = len(images)
    for path in videos:
        with Video(path) as video:
            total += video.declared_frames
    return total


def predict_files(segmenter: Segmenter, inputs: list[str | Path], out: str | Path,
                  config: PredictConfig = PredictConfig(),
                  on_frame: Callable[[int, int], None] | None = None) -> PredictReport:
    """Segment every image and video frame in ``inputs``; write results under ``out``.

    ``on_frame(done, total)`` follows progress; ``total`` counts images plus the frames videos declare.
    """
    images, videos = collect_inputs(inputs)
    out = Path(out)  # created with the first result, so an input that fails at once leaves nothing
    started, written, frames = time.perf_counter(), [], 0
    progress = {"done": 0, "total": _count_frames(images, videos)}

    def tick() -> None:
        progress["done"] += 1
        if on_frame:
            on_frame(progress["done"], progress["total"])

    for path in images:
        image = read_image(path)
        mask = segmenter.predict(image)
        written.append(_write_mask(out / f"{path.stem}.png", mask, segmenter, config.mask_format))
        if config.overlay:
            overlay = segmenter.overlay(image, mask, config.alpha)
            written.append(_write_encoded(out / f"{path.stem}_overlay.jpg", overlay))
        tick()
    for path in videos:
        count, files = _predict_video(segmenter, path, out, config, tick)
        frames += count
        written.extend(files)
    return PredictReport(len(images), len(videos), frames, tuple(written), time.perf_counter() - started)


def _predict_video(segmenter, path: Path, out: Path, config: PredictConfig,
                   tick: Callable[[], None]) -> tuple[int, list[str]]:
    video = Video(path)
    target = out / f"{path.stem}_overlay.mp4"
    make_folder(out)
    written, count = [], 0
    try:
        with atomic_output(target) as tmp:
            video_tmp = tmp.with_suffix(".mp4")  # VideoWriter picks the container by suffix
            writer = None
            try:
                for frame in video:
                    mask = segmenter.predict(frame)
                    if writer is None:
                        writer = _overlay_writer(video_tmp, video, frame.shape)
                    writer.write(segmenter.overlay(frame, mask, config.alpha))
                    if config.frame_masks:
                        folder = out / path.stem
                        folder.mkdir(exist_ok=True)
                        written.append(_write_mask(folder / f"{count:06d}.png", mask, segmenter, config.mask_format))
                    count += 1
                    tick()
            finally:
                if writer is not None:
                    writer.release()
            if count == 0:
                video_tmp.unlink(missing_ok=True)
                raise BadInputError(f"{path} opens but not one frame decodes (damaged or truncated video)")
            video_tmp.replace(tmp)
    finally:
        video.close()
    return count, [str(target), *written]


def _overlay_writer(target: Path, video: Video, shape: tuple[int, ...]) -> cv2.VideoWriter:
    """An MP4 writer for overlays of ``shape`` frames. A damaged header can declare a frame rate the encoder
    refuses (OpenCV's writer then writes nothing, without raising): the overlay falls back to 25 fps."""
    fps = video.fps
    for rate in dict.fromkeys((fps if 0 < fps <= MAX_FPS else DEFAULT_FPS, DEFAULT_FPS)):
        with video.native_output, opencv_quiet():
            writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"mp4v"), rate, (shape[1], shape[0]))
        if writer.isOpened():
            return writer
        writer.release()
    raise BadInputError(f"{video.path}: its {shape[1]}x{shape[0]} frames cannot be written as an MP4 overlay (the "
                        "video's header is likely damaged)")


MAX_FPS, DEFAULT_FPS = 1000.0, 25.0


def make_folder(folder: Path) -> None:
    """Create the output ``folder`` (and its parents) unless it exists; one BadInputError line when it cannot be
    (a file in the way, no permission)."""
    if folder.exists() and not folder.is_dir():
        raise BadInputError(f"cannot write into {folder}: it is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BadInputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc


def _write_mask(target: Path, mask: np.ndarray, segmenter: Segmenter, mask_format: str) -> str:
    make_folder(target.parent)
    atomic_write_bytes(target, encode_mask(mask, segmenter.meta.palette, mask_format))
    return str(target)


def _write_encoded(target: Path, image: np.ndarray) -> str:
    make_folder(target.parent)
    atomic_write_bytes(target, encode_image(image, target.suffix))
    return str(target)
