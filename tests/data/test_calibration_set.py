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


@pytest.mark.parametrize("name, message", [
    ("../../../../etc/passwd", "is not a relative path inside"),
    ("/etc/passwd", "is not a relative path inside"),
    ("train/images/outside.png", "leads outside"),  # a symlink in the root that points out of it
], ids=["dot-dot", "absolute", "symlink-out"])
def test_entries_pointing_outside_the_root_are_refused(root, tmp_path, name, message):
    calibration_set = build_calibration_set(root, "train", 2, "random")
    (tmp_path / "secret.png").write_bytes((root / calibration_set.images[0]).read_bytes())
    link = root / "train" / "images" / "outside.png"
    link.unlink(missing_ok=True)
    link.symlink_to(tmp_path / "secret.png")
    try:
        write_calibration_set(calibration_set, tmp_path / "c.json")
        payload = json.loads((tmp_path / "c.json").read_text())
        payload["images"][0]["path"] = name
        (tmp_path / "c.json").write_text(json.dumps(payload))
        with pytest.raises(BadInputError, match=message):
            load_calibration_set(tmp_path / "c.json")
    finally:
        link.unlink()


@pytest.mark.parametrize("text, message", [
    ("[" * 1_000_000 + "]" * 1_000_000, "its JSON nests too deeply"),
    ('{"format": "segdeploy.calibration-set", "images": {"a": 1}}', "'images' must be list, not dict"),
    ('{"format": "segdeploy.calibration-set", "images": [{"path": "a.png", "sha256": 5}]}',
     r"images\[0\]: 'sha256' must be str, not int"),
    ('{"format": "segdeploy.calibration-set", "images": [{"path": "a.png", "sha256": "ab"}]}',
     r"images\[0\].sha256 must be 64 hexadecimal digits"),
    ('{"format": "segdeploy.calibration-set", "seed": "x", "images": [{"path": "a", "sha256": "' + "0" * 64 + '"}]}',
     "'seed' must be int, not str"),
    ("\xff\xfe binary", "is not a calibration set: it is unrecognised binary data"),
], ids=["deep-nesting", "images-dict", "hash-type", "hash-short", "seed-type", "binary"])
def test_malformed_calibration_sets_say_what_is_wrong(tmp_path, text, message):
    path = tmp_path / "c.json"
    path.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    with pytest.raises(BadInputError, match=message):
        load_calibration_set(path, verify=False)
