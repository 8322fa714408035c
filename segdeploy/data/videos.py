"""Opening untrusted video files: one BadInputError line for what OpenCV cannot open, and quiet.

OpenCV's own log lines are silenced while it probes a file (as for images); what FFmpeg prints on
stderr ("moov atom not found") is captured around each open and decode call and logged at DEBUG
(``--verbose``). Frame sizes are checked against the image limit before any frame is decoded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from segdeploy.data.images import MAX_IMAGE_PIXELS, opencv_quiet
from segdeploy.errors import BadInputError
from segdeploy.fileio import require_file
from segdeploy.reading import NativeStderr
from segdeploy.sniff import damaged, describe


class Video:
    """Frames of an untrusted video file, decoded quietly: ``with Video(path) as video: for frame in video``.

    Opening raises BadInputError if OpenCV cannot open the file or its frames would be over MAX_IMAGE_PIXELS;
    iteration stops at the end or at the first frame that does not decode.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = require_file(path, "video")
        self.native_output = NativeStderr(str(self.path))  # also for the caller's writer: FFmpeg prints there too
        try:
            self.capture = _open(self.path, self.native_output)
        except BaseException:
            self.native_output.close()
            raise

    @property
    def fps(self) -> float:
        return self.capture.get(cv2.CAP_PROP_FPS) or 25.0

    @property
    def declared_frames(self) -> int:
        return max(0, int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT)))

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            with self.native_output, opencv_quiet():
                ok, frame = self.capture.read()
            if not ok:
                return
            yield frame

    def close(self) -> None:
        self.capture.release()
        self.native_output.close()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open(path: Path, native: NativeStderr) -> cv2.VideoCapture:
    with native, opencv_quiet():
        # One decoding thread: FFmpeg's frame threads print their complaints after read() has returned, out of
        # reach of the capture; decoding is not where a segmentation pipeline spends its time.
        capture = cv2.VideoCapture(str(path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, 1])
    if not capture.isOpened():
        capture.release()
        raise BadInputError(_cannot_open(path))
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width < 1 or height < 1 or width * height > MAX_IMAGE_PIXELS:
        capture.release()
        raise BadInputError(f"{path} declares {width}x{height} frames; frames must have 1 to "
                            f"{MAX_IMAGE_PIXELS // 1_000_000} M pixels")
    return capture


def _cannot_open(path: Path) -> str:
    looks = describe(path)
    if looks.endswith(" video"):
        return f"{path} is {damaged(looks)} (truncated or corrupt); OpenCV cannot open it"
    return f"{path} is not a video OpenCV can open: it looks like {looks}"
