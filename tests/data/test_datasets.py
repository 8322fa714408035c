import cv2
import numpy as np
import pytest
from PIL import Image

from segdeploy.data.datasets import CAMVID_CLASSES, open_dataset, open_image_folder
from segdeploy.data.synthetic import SYNTHETIC_CLASSES, make_scenes, write_synthetic_dataset
from segdeploy.errors import BadInputError


def _write_pairs(images_dir, masks_dir, count, size=(20, 30), label_max=3, mask_suffix=".png"):
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for index in range(count):
        cv2.imwrite(str(images_dir / f"img{index}.png"), rng.integers(0, 255, (*size, 3), dtype=np.uint8))
        cv2.imwrite(str(masks_dir / f"img{index}{mask_suffix}"), rng.integers(0, label_max, size, dtype=np.uint8))


def test_generic_layout_with_class_file(tmp_path):
    root = write_synthetic_dataset(tmp_path / "syn", {"train": 3, "val": 2}, size=(24, 32))
    train = open_dataset(root, "train")
    assert len(train) == 3 and train.layout == "generic" and train.class_names == SYNTHETIC_CLASSES
    sample = train[0]
    assert sample.image.shape == (24, 32, 3) and sample.image.dtype == np.uint8
    assert sample.mask.shape == (24, 32) and sample.mask.max() < len(SYNTHETIC_CLASSES)
    assert len(open_dataset(root, "val")) == 2


def test_camvid_layout(tmp_path):
    _write_pairs(tmp_path / "train", tmp_path / "trainannot", 2, label_max=12)
    dataset = open_dataset(tmp_path, "train")
    assert dataset.layout == "camvid" and dataset.class_names == CAMVID_CLASSES and dataset.ignore_index == 11
    assert dataset[1].mask.shape == (20, 30)


def test_voc_layout_reads_palette_indices(tmp_path):
    (tmp_path / "JPEGImages").mkdir()
    (tmp_path / "SegmentationClass").mkdir()
    (tmp_path / "ImageSets" / "Segmentation").mkdir(parents=True)
    labels = np.zeros((16, 20), np.uint8)
    labels[4:10, 5:15] = 15  # person
    labels[0, :] = 255  # boundary = ignore
    palette_png = Image.fromarray(labels, mode="P")
    palette_png.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    palette_png.save(tmp_path / "SegmentationClass" / "a.png")
    cv2.imwrite(str(tmp_path / "JPEGImages" / "a.jpg"), np.full((16, 20, 3), 90, np.uint8))
    (tmp_path / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nmissing\n")
    dataset = open_dataset(tmp_path, "val")
    assert dataset.layout == "voc" and dataset.num_classes == 21 and dataset.skipped == 1
    np.testing.assert_array_equal(dataset[0].mask, labels)


def test_unknown_layout_lists_the_accepted_ones(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(BadInputError, match="accepted: camvid"):
        open_dataset(tmp_path, "train")


def test_missing_split_lists_the_available_ones(tmp_path):
    _write_pairs(tmp_path / "train", tmp_path / "trainannot", 1)
    with pytest.raises(BadInputError, match="split 'test' not found.*available: train"):
        open_dataset(tmp_path, "test")


def test_unpaired_files_are_counted_and_nothing_left_fails(tmp_path):
    _write_pairs(tmp_path / "train", tmp_path / "trainannot", 3)
    (tmp_path / "trainannot" / "img2.png").rename(tmp_path / "trainannot" / "other.png")
    dataset = open_dataset(tmp_path, "train")
    assert len(dataset) == 2 and dataset.skipped == 2
    _write_pairs(tmp_path / "x" / "images", tmp_path / "x" / "masks", 2, mask_suffix="_m.png")
    with pytest.raises(BadInputError, match="no image .* has a mask"):
        open_dataset(tmp_path, "x")


def test_size_mismatch_and_out_of_range_labels(tmp_path):
    _write_pairs(tmp_path / "train", tmp_path / "trainannot", 2, label_max=12)
    cv2.imwrite(str(tmp_path / "trainannot" / "img0.png"), np.zeros((10, 10), np.uint8))
    cv2.imwrite(str(tmp_path / "trainannot" / "img1.png"), np.full((20, 30), 40, np.uint8))
    dataset = open_dataset(tmp_path, "train")
    with pytest.raises(BadInputError, match="mask is 10x10 but its image is 20x30"):
        dataset[0]
    with pytest.raises(BadInputError, match=r"values \[40\] are outside the 11 classes"):
        dataset[1]


def test_plain_image_folder(tmp_path):
    with pytest.raises(BadInputError, match="no images"):
        open_image_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "x.png"), np.zeros((4, 4, 3), np.uint8))
    folder = open_image_folder(tmp_path)
    assert len(folder) == 1 and folder[0].mask is None


def test_synthetic_scenes_are_deterministic_and_not_trivial():
    a_images, a_masks = make_scenes(3, 60, 80, seed=4)
    b_images, b_masks = make_scenes(3, 60, 80, seed=4)
    np.testing.assert_array_equal(a_images, b_images)
    np.testing.assert_array_equal(a_masks, b_masks)
    assert not np.array_equal(a_images, make_scenes(3, 60, 80, seed=5)[0])
    assert len(np.unique(a_masks)) >= 4
    # Colour alone does not decide the class: nearest class-mean colour is often wrong.
    pixels, labels = a_images.reshape(-1, 3).astype(float), a_masks.ravel()
    means = np.stack([pixels[labels == c].mean(0) for c in np.unique(labels)])
    nearest = np.unique(labels)[np.argmin(((pixels[:, None] - means[None]) ** 2).sum(-1), axis=1)]
    assert (nearest == labels).mean() < 0.9


@pytest.mark.data
def test_camvid_splits(camvid_root):
    train, val = open_dataset(camvid_root, "train"), open_dataset(camvid_root, "val")
    assert (len(train), len(val)) == (367, 101)
    sample = val[0]
    assert sample.image.shape == (360, 480, 3) and sample.mask.max() <= 11


def test_dataset_files_linking_out_of_the_root_are_refused(tmp_path):
    root = write_synthetic_dataset(tmp_path / "data", {"val": 2}, size=(16, 20))
    (tmp_path / "secret.png").write_bytes(next((root / "val" / "images").iterdir()).read_bytes())
    (root / "val" / "images" / "zz.png").symlink_to(tmp_path / "secret.png")
    with pytest.raises(BadInputError, match="dataset file 'zz.png' leads outside"):
        open_dataset(root, "val")


def test_voc_split_lists_cannot_name_files_outside(tmp_path):
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "ImageSets/Segmentation/val.txt").write_text("../../../etc/passwd\n")
    with pytest.raises(BadInputError, match="is not a relative path inside"):
        open_dataset(tmp_path, "val")


def test_class_lists_must_be_text_with_1_to_256_names(tmp_path):
    root = write_synthetic_dataset(tmp_path / "data", {"val": 2}, size=(16, 20))
    (root / "classes.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BadInputError, match="not UTF-8 text"):
        open_dataset(root, "val")
    (root / "classes.txt").write_text("\n".join(f"c{index}" for index in range(300)))
    with pytest.raises(BadInputError, match="names 300 classes"):
        open_dataset(root, "val")
