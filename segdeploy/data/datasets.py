"""Labelled dataset readers (CamVid/SegNet, generic images+masks, Pascal VOC) and image folders.

A reader yields ``Sample(image, mask, name)``: image HxWx3 uint8 BGR as OpenCV reads it,
mask HxW uint8 class ids (or None for plain image folders). Class names, palette and the
ignore label come with the reader.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from segdeploy.data.images import read_image, read_mask
from segdeploy.errors import BadInputError
from segdeploy.fileio import inside_root
from segdeploy.metadata import default_palette
from segdeploy.reading import read_document

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}
CAMVID_CLASSES = ("sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
                  "pedestrian", "bicyclist")
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                  (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
CAMVID_IGNORE = 11
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
LAYOUTS = ("camvid: <split>/ + <split>annot/", "generic: [<split>/]images/ + [<split>/]masks/",
           "voc: JPEGImages/ + SegmentationClass/ + ImageSets/Segmentation/<split>.txt")


@dataclass(frozen=True)
class Sample:
    image: np.ndarray
    mask: np.ndarray | None
    name: str


class SegDataset:
    """Pairs of image and mask files with the class list they use."""

    def __init__(self, pairs: list[tuple[Path, Path | None]], class_names: tuple[str, ...],
                 palette: tuple[tuple[int, int, int], ...], ignore_index: int | None, layout: str,
                 skipped: int = 0) -> None:
        self.pairs = pairs
        self.class_names = class_names
        self.palette = palette
        self.ignore_index = ignore_index
        self.layout = layout
        self.skipped = skipped  # images without masks or masks without images

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def has_masks(self) -> bool:
        return all(mask is not None for _, mask in self.pairs)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        image_path, mask_path = self.pairs[index]
        image = read_image(image_path)
        mask = None
        if mask_path is not None:
            mask = read_mask(mask_path)
            if mask.shape != image.shape[:2]:
                raise BadInputError(
                    f"{mask_path.name}: mask is {mask.shape[0]}x{mask.shape[1]} but its image is "
                    f"{image.shape[0]}x{image.shape[1]}"
                )
            self.check_labels(mask, mask_path.name)
        return Sample(image, mask, image_path.stem)

    def check_labels(self, mask: np.ndarray, name: str) -> None:
        bad = np.unique(mask[(mask >= self.num_classes) & (mask != (self.ignore_index or -1))])
        if bad.size:
            raise BadInputError(
                f"{name}: mask values {bad[:5].tolist()} are outside the {self.num_classes} classes "
                f"(ignore label {self.ignore_index})"
            )


def list_images(folder: Path) -> list[Path]:
    """The image files in ``folder``; one that is a link leading out of it is refused, not followed."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [inside_root(folder, file.name, "dataset file") for file in files]


def open_dataset(root: str | os.PathLike, split: str = "train") -> SegDataset:
    """Detect the layout under ``root`` and open ``split``; errors list what is accepted."""
    root = Path(root)
    if not root.is_dir():
        raise BadInputError(f"data folder not found: {root}")
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        return _open_voc(root, split)
    if (root / split).is_dir() and (root / f"{split}annot").is_dir():
        return _pair_folders(root / split, root / f"{split}annot", "camvid", CAMVID_CLASSES, CAMVID_PALETTE,
                             CAMVID_IGNORE)
    for base in (root / split, root):
        if (base / "images").is_dir() and (base / "masks").is_dir():
            return _open_generic(base)
        if (base / "images").is_dir():
            raise BadInputError(f"{base} has images/ but no masks/ folder (a labelled dataset needs both); for "
                                "images without labels pass the images folder itself")
    splits = _available_splits(root)
    if splits:
        raise BadInputError(f"split {split!r} not found in {root}; available: {', '.join(splits)}")
    raise BadInputError(f"{root} has no recognised dataset layout; accepted: {'; '.join(LAYOUTS)}")


def _available_splits(root: Path) -> list[str]:
    names = [p.name for p in root.iterdir() if p.is_dir()]
    camvid = [n for n in names if f"{n}annot" in names]
    generic = [n for n in names if (root / n / "images").is_dir()]
    voc_sets = root / "ImageSets" / "Segmentation"
    voc = [p.stem for p in voc_sets.glob("*.txt")] if voc_sets.is_dir() else []
    return sorted(set(camvid + generic + voc))


def _pair_folders(images: Path, masks: Path, layout: str, class_names, palette, ignore) -> SegDataset:
    image_files = {p.stem: p for p in list_images(images)}
    mask_files = {p.stem: p for p in list_images(masks)}
    common = sorted(set(image_files) & set(mask_files))
    skipped = len(image_files) + len(mask_files) - 2 * len(common)
    if not common:
        raise BadInputError(
            f"no image in {images} has a mask in {masks} ({len(image_files)} images, {len(mask_files)} masks)"
        )
    pairs = [(image_files[stem], mask_files[stem]) for stem in common]
    return SegDataset(pairs, class_names, palette, ignore, layout, skipped)


def _open_generic(base: Path) -> SegDataset:
    """images/ + masks/ matched by stem; classes from classes.txt or the largest label seen."""
    classes_file = base / "classes.txt"
    if not classes_file.exists():
        classes_file = base.parent / "classes.txt"
    dataset = _pair_folders(base / "images", base / "masks", "generic", (), (), 255)
    if classes_file.exists():
        names = _class_names(classes_file)
    else:
        top = max(_largest_label(read_mask(mask)) for _, mask in dataset.pairs)
        names = tuple(f"class_{index}" for index in range(top + 1))
    dataset.class_names = names
    dataset.palette = default_palette(len(names))
    return dataset


def _class_names(path: Path) -> tuple[str, ...]:
    """One class name per non-empty line; 1 to 256 of them (masks hold 8-bit ids)."""
    names = tuple(line.strip() for line in read_document(path, "class list").splitlines() if line.strip())
    if not 1 <= len(names) <= 256:
        raise BadInputError(f"{path} names {len(names)} classes; a class list has 1 to 256 names, one per line")
    return names


def _largest_label(mask: np.ndarray) -> int:
    return int(np.max(mask[mask != 255], initial=0))


def _open_voc(root: Path, split: str) -> SegDataset:
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.exists():
        splits = _available_splits(root)
        raise BadInputError(f"split {split!r} not found in {root}; available: {', '.join(splits) or 'none'}")
    stems = [line.strip() for line in read_document(listing, "split list").splitlines() if line.strip()]
    pairs, skipped = [], 0
    for stem in stems:
        image = inside_root(root / "JPEGImages", f"{stem}.jpg", f"{listing}: image")
        mask = inside_root(root / "SegmentationClass", f"{stem}.png", f"{listing}: mask")
        if image.exists() and mask.exists():
            pairs.append((image, mask))
        else:
            skipped += 1
    if not pairs:
        raise BadInputError(f"none of the {len(stems)} images listed in {listing} has both image and mask")
    return SegDataset(pairs, VOC_CLASSES, default_palette(len(VOC_CLASSES)), 255, "voc", skipped)


def open_image_folder(folder: str | os.PathLike) -> SegDataset:
    """A folder of plain images (no masks): a source for calibration and predict."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInputError(f"image folder not found: {folder}")
    images = list_images(folder)
    if not images:
        raise BadInputError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {folder}")
    return SegDataset([(p, None) for p in images], (), (), None, "images")
