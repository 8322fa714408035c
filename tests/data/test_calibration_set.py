import json

import numpy as np
import pytest

from segdeploy.data.calibration_set import (
    build_calibration_set,
    load_calibration_set,
    select_images,
    write_calibration_set,
)
from segdeploy.data.datasets import open_dataset
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.errors import BadInputError


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn"), {"train": 12}, size=(32, 40))


def test_same_seed_same_manifest(root, tmp_path):
    first = build_calibration_set(root, "train", 5, "random", seed=3)
    assert first == build_calibration_set(root, "train", 5, "random", seed=3)
    assert first.images != build_calibration_set(root, "train", 5, "random", seed=4).images
    write_calibration_set(first, tmp_path / "m.json")
    loaded, files = load_calibration_set(tmp_path / "m.json")
    assert loaded.digest == first.digest and all(f.is_file() for f in files)
    assert not json.loads((tmp_path / "m.json").read_text())["data_root"].startswith("/")


def test_count_is_capped_by_what_exists(root):
    assert len(build_calibration_set(root, "train", 1000, "random").images) == 12


def test_changed_or_missing_images_are_detected(root, tmp_path):
    manifest = build_calibration_set(root, "train", 3, "random")
    write_calibration_set(manifest, tmp_path / "m.json")
    with pytest.raises(BadInputError, match="missing under"):
        load_calibration_set(tmp_path / "m.json", data_root=tmp_path)
    target = manifest.resolve()[0]
    original = target.read_bytes()
    try:
        target.write_bytes(original + b"\0")
        with pytest.raises(BadInputError, match="changed since"):
            load_calibration_set(tmp_path / "m.json")
    finally:
        target.write_bytes(original)


def test_class_balanced_covers_rare_classes_better_than_random(root):
    dataset = open_dataset(root, "train")

    def coverage(indices):
        present = np.zeros(dataset.num_classes)
        for index in indices:
            mask = dataset[index].mask
            present += np.bincount(mask.ravel(), minlength=dataset.num_classes) > 0
        return present.min()

    balanced = select_images(dataset, 3, "class-balanced", seed=0)
    randoms = [coverage(select_images(dataset, 3, "random", seed=s)) for s in range(10)]
    assert coverage(balanced) >= max(randoms)


def test_not_a_calibration_set(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(BadInputError, match="not a segdeploy calibration set"):
        load_calibration_set(tmp_path / "x.json")


def test_files_written_under_the_earlier_format_name_still_load(root, tmp_path):
    write_calibration_set(build_calibration_set(root, "train", 2, "random"), tmp_path / "c.json")
    text = (tmp_path / "c.json").read_text().replace("segdeploy.calibration-set", "segdeploy.calibration-manifest")
    (tmp_path / "old.json").write_text(text)
    assert len(load_calibration_set(tmp_path / "old.json")[1]) == 2


@pytest.mark.data
def test_class_balanced_on_camvid_covers_the_rare_classes(camvid_root):
    dataset = open_dataset(camvid_root, "train")
    rare = [dataset.class_names.index(name) for name in ("pole", "sign", "pedestrian", "bicyclist")]

    def images_with_rare(indices):
        counts = np.zeros(len(rare))
        for index in indices:
            mask = dataset[index].mask
            counts += [(mask == c).mean() > 0.001 for c in rare]
        return counts

    balanced = images_with_rare(select_images(dataset, 32, "class-balanced", seed=0))
    random = images_with_rare(select_images(dataset, 32, "random", seed=0))
    assert balanced.min() >= random.min() and balanced.sum() > random.sum()
