"""The accuracy gate judges on the user's domain: the calibration dataset's other labelled split, or the
calibration folder's other real images; synthetic scenes only when there are no real ones."""

import shutil

from segdeploy.artifact_meta import read_metadata
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.accuracy import held_out_images
from segdeploy.quantize.calibration import resolve_calibration
from segdeploy.quantize.config import AccuracyGate


def test_a_split_folder_is_that_split_and_the_gate_uses_the_other_one(scenes, unet_fp32):
    source = resolve_calibration(str(scenes / "train"), 8, 0, "random")
    assert (source.dataset_root, source.eval_split) == (scenes, "val")
    assert all(path.resolve().is_relative_to((scenes / "train").resolve()) for path in source.files)
    description, samples = held_out_images(AccuracyGate(), read_metadata(load_onnx(unet_fp32)), source)
    assert description.startswith(f"{scenes}:val") and all(mask is not None for _, mask in samples)


def test_the_dataset_root_calibrates_on_train_and_gates_on_val(scenes):
    source = resolve_calibration(str(scenes), 8, 0, "random")
    assert (source.dataset_root, source.eval_split, source.set.source) == (scenes, "val", "generic:train")


def test_plain_images_are_gated_on_the_images_not_used_to_calibrate(scenes, unet_fp32, tmp_path):
    folder = tmp_path / "photos"
    shutil.copytree(scenes / "train" / "images", folder)
    source = resolve_calibration(str(folder), 8, 0, "random")
    description, samples = held_out_images(AccuracyGate(), read_metadata(load_onnx(unet_fp32)), source)
    used = {path.name for path in source.files}
    assert "images not used to calibrate" in description and "agreement only" in description
    assert len(samples) == min(32 - len(used), AccuracyGate().eval_images) and all(m is None for _, m in samples)
