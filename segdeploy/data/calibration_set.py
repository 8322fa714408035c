"""Calibration sets: image paths relative to a data root, each with its sha256 (a JSON file).

Written down, a calibration set is reproducible and checkable. Paths resolve against
``data_root`` given by the caller, else the root recorded in the file, else the
file's own folder. ``class-balanced`` selection uses label maps so rare classes
(pole, sign, pedestrian, bicyclist on CamVid) are covered.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from segdeploy.data.datasets import SegDataset, open_dataset, open_image_folder
from segdeploy.errors import BadInputError, check_choice, check_range, printable, shorten
from segdeploy.fileio import inside_root, sha256_bytes, sha256_file, write_json
from segdeploy.limits import SEED_MAX
from segdeploy.reading import field, load_json

CALIBRATION_SET_FORMAT = "segdeploy.calibration-set"
# Read as well: files written before the calibration set and the engine's sidecar manifest got distinct names.
EARLIER_FORMATS = ("segdeploy.calibration-manifest",)
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


class Selection(StrEnum):
    """How images are chosen from a split."""

    RANDOM = "random"
    CLASS_BALANCED = "class-balanced"  # greedy cover of rare classes (needs label maps)


@dataclass(frozen=True)
class CalibrationSet:
    images: tuple[str, ...]  # relative to the data root
    sha256: tuple[str, ...]
    data_root: str
    selection: str
    seed: int
    source: str  # e.g. "camvid:train"

    def resolve(self, data_root: str | os.PathLike | None = None) -> list[Path]:
        """The image files under ``data_root`` (default: the recorded root); none may leave it."""
        root = Path(data_root or self.data_root)
        return [inside_root(root, name, "calibration image") for name in self.images]

    @property
    def digest(self) -> str:
        """One hash over the ordered (path, sha256) pairs: identifies the calibration set."""
        return sha256_bytes("\n".join(f"{n} {h}" for n, h in zip(self.images, self.sha256)).encode())


def select_images(dataset: SegDataset, count: int, selection: str, seed: int) -> list[int]:
    """Indices of ``count`` images (all if fewer exist) chosen by ``selection``."""
    selection = check_choice(Selection, selection, "the selection")
    count = min(count, len(dataset))
    rng = np.random.default_rng(seed)
    if selection == Selection.RANDOM or not dataset.has_masks:
        return sorted(rng.choice(len(dataset), size=count, replace=False).tolist())
    return _class_balanced(dataset, count, rng)


def _class_balanced(dataset: SegDataset, count: int, rng: np.random.Generator) -> list[int]:
    """Greedy: each pick maximises the summed rarity of the classes it adds, discounted by coverage."""
    presence = np.zeros((len(dataset), dataset.num_classes), dtype=np.float64)
    for index in range(len(dataset)):
        mask = dataset[index].mask
        pixels = np.bincount(mask[mask < dataset.num_classes].ravel(), minlength=dataset.num_classes)
        presence[index] = pixels > 0.001 * mask.size  # present, not a stray pixel
    rarity = 1.0 / np.maximum(presence.sum(0), 1)
    covered = np.zeros(dataset.num_classes)
    chosen: list[int] = []
    available = np.ones(len(dataset), dtype=bool)
    jitter = rng.random(len(dataset)) * 1e-9  # seeded tie-break
    for _ in range(count):
        gain = presence @ (rarity / (1.0 + covered)) + jitter
        gain[~available] = -np.inf
        pick = int(np.argmax(gain))
        chosen.append(pick)
        available[pick] = False
        covered += presence[pick]
    return sorted(chosen)


def build_calibration_set(data: str | os.PathLike, split: str | None, count: int, selection: str = "random",
                   seed: int = 0) -> CalibrationSet:
    """Choose images from a dataset split (or a plain image folder when ``split`` is None)."""
    check_range(seed, "--seed", low=0, high=SEED_MAX)
    if count < 1:
        raise BadInputError("--num-images must be >= 1")
    dataset = open_dataset(data, split) if split else open_image_folder(data)
    indices = select_images(dataset, count, selection, seed)
    root = Path(data).resolve()
    paths = [dataset.pairs[index][0].resolve() for index in indices]
    return CalibrationSet(
        images=tuple(str(path.relative_to(root)) for path in paths),
        sha256=tuple(sha256_file(path) for path in paths),
        data_root=str(root), selection=selection, seed=seed,
        source=f"{dataset.layout}:{split}" if split else "images",
    )


def write_calibration_set(calibration_set: CalibrationSet, path: str | os.PathLike) -> None:
    """Write JSON; ``data_root`` is stored relative to the file's folder so a repository can move."""
    relative_root = os.path.relpath(calibration_set.data_root, Path(path).resolve().parent)
    payload: dict[str, Any] = {
        "format": CALIBRATION_SET_FORMAT, "version": 1, "source": calibration_set.source,
        "selection": calibration_set.selection, "seed": calibration_set.seed, "data_root": relative_root,
        "created": datetime.date.today().isoformat(), "digest": calibration_set.digest,
        "images": [{"path": name, "sha256": digest}
                   for name, digest in zip(calibration_set.images, calibration_set.sha256)],
    }
    write_json(path, payload)


def load_calibration_set(path: str | os.PathLike, data_root: str | os.PathLike | None = None,
                         verify: bool = True) -> tuple[CalibrationSet, list[Path]]:
    """Read a calibration set and resolve its images; with ``verify``, every file must exist with its hash.

    The file is untrusted: every image must be a relative path that stays inside the data root, also
    after symlinks are followed (``../../etc/passwd``, absolute paths and links out of the root are refused).
    """
    payload = load_json(path, "calibration set")
    if not isinstance(payload, dict) or payload.get("format") not in (CALIBRATION_SET_FORMAT, *EARLIER_FORMATS):
        raise BadInputError(f"{path} is not a segdeploy calibration set (no \"format\": "
                            f"\"{CALIBRATION_SET_FORMAT}\"); write one with 'segdeploy calibration-set'")
    calibration_set = _calibration_set_from(payload, Path(path))
    root = Path(data_root) if data_root else Path(calibration_set.data_root)
    files = [inside_root(root, name, f"{path}: image") for name in calibration_set.images]
    if verify:
        _verify_files(files, calibration_set.sha256, root)
    return calibration_set, files


def _calibration_set_from(payload: dict[str, Any], path: Path) -> CalibrationSet:
    where = str(path)
    items = field(payload, "images", list, where)
    if not items:
        raise BadInputError(f"{path} lists no images")
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadInputError(f"{path}: images[{index}] must be an object with path and sha256")
        field(item, "path", str, f"{path}: images[{index}]")
        if not SHA256_HEX.fullmatch(field(item, "sha256", str, f"{path}: images[{index}]")):
            raise BadInputError(f"{path}: images[{index}].sha256 must be 64 hexadecimal digits")
    optional = {key: field(payload, key, kind, where) for key, kind in
                (("data_root", str), ("selection", str), ("seed", int), ("source", str)) if key in payload}
    return CalibrationSet(
        images=tuple(item["path"] for item in items), sha256=tuple(item["sha256"].lower() for item in items),
        data_root=str(path.resolve().parent / optional.get("data_root", ".")),
        selection=optional.get("selection", "?"), seed=optional.get("seed", 0), source=optional.get("source", "?"))


def _verify_files(files: list[Path], hashes: tuple[str, ...], root: Path) -> None:
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise BadInputError(f"{len(missing)} calibration image(s) missing under {root} (first: "
                            f"{shorten(printable(str(missing[0])), 200)}); "
                            "pass --data-root")
    changed = [f for f, h in zip(files, hashes) if sha256_file(f) != h]
    if changed:
        raise BadInputError(f"{len(changed)} calibration image(s) changed since the calibration set was written "
                            f"(first: {changed[0]})")
