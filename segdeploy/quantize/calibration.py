"""Calibration sources and range collection with bounded memory.

ONNX Runtime's histogram calibrators keep every intermediate output of every sample given
to one ``collect_data`` call. Feeding one image per call keeps only one image's
activations alive; histograms (and min/max ranges) merge across calls.
"""

from __future__ import annotations

import contextlib
import io
import resource
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segdeploy.data.calibration_set import (
    CALIBRATION_SET_FORMAT,
    EARLIER_FORMATS,
    CalibrationSet,
    build_calibration_set,
    load_calibration_set,
)
from segdeploy.data.datasets import open_dataset, open_image_folder
from segdeploy.data.images import read_image
from segdeploy.data.preprocess import preprocess
from segdeploy.errors import BadInputError, require
from segdeploy.metadata import ArtifactMeta
from segdeploy.quantize.config import CalibrationMethod


@dataclass(frozen=True)
class CalibrationSource:
    """The calibration images chosen from ``--calib``, their written-down set, and where they came from."""

    files: tuple[Path, ...]
    set: CalibrationSet
    dataset_root: Path | None  # the labelled dataset the images came from
    eval_split: str | None = None  # that dataset's other labelled split: where the accuracy gate looks first
    image_folder: Path | None = None  # an unlabelled source: its other images are the gate's held-out images


def resolve_calibration(source: str, num_images: int, seed: int, select: str,
                        data_root: str | None = None) -> CalibrationSource:
    """A calibration set file, a dataset folder (its ``train`` split), a split folder of a dataset
    (``camvid/train``: that split) or a plain image folder -> image files, and where to evaluate."""
    path = Path(source)
    if path.is_file():
        head = path.read_text(errors="ignore")[:200] if path.suffix == ".json" else ""
        if not any(name in head for name in (CALIBRATION_SET_FORMAT, *EARLIER_FORMATS)):
            raise BadInputError(f"--calib {path} is a file but not a calibration set (see 'segdeploy calibration-set')")
        chosen, files = load_calibration_set(path, data_root)
        split = chosen.source.rpartition(":")[2] or "train"
        return CalibrationSource(tuple(files[:num_images]), chosen, Path(chosen.data_root), _other_split(split))
    if not path.is_dir():
        raise BadInputError(f"calibration source not found: {path}")
    root, split = _dataset_split(path)
    if root is not None:
        chosen = build_calibration_set(root, split, num_images, select, seed)
        return CalibrationSource(tuple(chosen.resolve()), chosen, root, _other_split(split))
    available = len(open_image_folder(path))  # raises if there are no images at all
    # Unlabelled images: keep a quarter out of calibration so the gate has real held-out images.
    count = min(num_images, available - available // 4)
    chosen = build_calibration_set(path, None, count, "random", seed)
    return CalibrationSource(tuple(chosen.resolve()), chosen, None, image_folder=path)


def calibration_set_path(out: Path) -> Path:
    """Where the calibration set used for the artifact ``out`` is written: ``<out stem>.calib.json``."""
    return out.with_name(out.stem + ".calib.json")


def _dataset_split(path: Path) -> tuple[Path | None, str]:
    """(dataset root, split) when ``path`` is one split folder of a labelled dataset (``--calib camvid/train``,
    as a user types it) or a dataset root (its train split); (None, "") otherwise."""
    for root, split in ((path.parent, path.name), (path, "train")):
        try:
            dataset = open_dataset(root, split)
        except BadInputError:
            continue
        # a split-less layout under the parent would open for any split name: the images must be path's own
        if dataset.has_masks and (root == path or dataset.pairs[0][0].resolve().is_relative_to(path.resolve())):
            return root, split
    return None, ""


def _other_split(split: str) -> str:
    return "train" if split == "val" else "val"


class _OneBatch:
    """The CalibrationDataReader protocol for a single input batch."""

    def __init__(self, name: str, batch: np.ndarray) -> None:
        self.items = [{name: batch}]

    def get_next(self):
        return self.items.pop() if self.items else None


def calibration_batches(files: tuple[Path, ...], meta: ArtifactMeta):
    """Yield (1, 3, H, W) model inputs; undecodable images are skipped and counted."""
    skipped = 0
    for file in files:
        try:
            image = read_image(file)
        except BadInputError:
            skipped += 1
            continue
        yield preprocess(image, meta.preprocess)[0]
    if skipped == len(files):
        raise BadInputError(f"none of the {len(files)} calibration images could be decoded")


def collect_ranges(model_path: Path, files: tuple[Path, ...], meta: ArtifactMeta, method: str,
                   percentile: float, symmetric: bool, on_image=None):
    """Calibrate one image per ``collect_data`` call; returns (TensorsData, peak RSS MB).

    ``on_image(done, total)`` is called after each image.
    """
    require("onnxruntime", "cpu")
    from onnxruntime.quantization import create_calibrator

    calibrate_method = calibration_method(method)
    options = {"symmetric": symmetric, "percentile": percentile}
    count = 0
    with tempfile.TemporaryDirectory(prefix="segdeploy-calib.") as scratch, _silenced():
        calibrator = create_calibrator(model_path, None, augmented_model_path=str(Path(scratch) / "aug.onnx"),
                                       calibrate_method=calibrate_method, extra_options=options)
        for batch in calibration_batches(files, meta):
            calibrator.collect_data(_OneBatch(meta.io.input_name, batch))
            count += 1
            if on_image:
                on_image(count, len(files))
        ranges = calibrator.compute_data()
    return ranges, peak_rss_mb()


def calibration_method(method: CalibrationMethod):
    """ONNX Runtime's own CalibrationMethod for ``method``."""
    from onnxruntime.quantization import CalibrationMethod as OrtMethod

    return {CalibrationMethod.MINMAX: OrtMethod.MinMax, CalibrationMethod.ENTROPY: OrtMethod.Entropy,
            CalibrationMethod.PERCENTILE: OrtMethod.Percentile}[CalibrationMethod(method)]


def peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def _silenced():
    """ONNX Runtime's quantization tools print progress to stdout; keep the CLI's output clean."""
    with contextlib.redirect_stdout(io.StringIO()):
        yield
