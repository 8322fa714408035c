"""Accuracy of a quantized model against its float original on held-out images, and the gates.

Held-out images come from ``--eval-data/--eval-split``, else the calibration dataset's val
split, else seeded synthetic scenes (then only agreement can be checked). Calibration
images are never used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.datasets import SegDataset, open_dataset
from segdeploy.data.preprocess import postprocess, preprocess
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.metadata import ArtifactMeta
from segdeploy.metrics import Agreement, ConfusionMatrix
from segdeploy.quantize.config import AccuracyGate, AccuracyReport

SYNTHETIC_EVAL_IMAGES = 8


def held_out_images(gate: AccuracyGate, meta: ArtifactMeta, calibration_root: Path | None,
                    calibration_files: tuple[Path, ...] = ()):
    """(description, list of (image, mask or None)) for evaluation; never calibration images."""
    dataset: SegDataset | None = None
    if gate.eval_data:
        dataset = open_dataset(gate.eval_data, gate.eval_split or "val")
    elif calibration_root is not None:
        try:
            dataset = open_dataset(calibration_root, gate.eval_split or "val")
        except BadInputError:
            dataset = None
    if dataset is None:
        height, width = meta.preprocess.eval_size
        images, _ = make_scenes(SYNTHETIC_EVAL_IMAGES, height, width, seed=777)
        return "synthetic scenes (no --eval-data; agreement only)", [(image, None) for image in images]
    calibration = {path.resolve() for path in calibration_files}
    indices = [i for i in range(len(dataset)) if dataset.pairs[i][0].resolve() not in calibration]
    if not indices:
        raise BadInputError("every evaluation image is also a calibration image; pass another --eval-split")
    chosen = indices[: gate.eval_images]
    samples = [dataset[i] for i in chosen]
    return f"{gate.eval_data or calibration_root}:{gate.eval_split or 'val'} ({len(samples)} images)", [
        (sample.image, sample.mask) for sample in samples
    ]


def predict_masks(model: bytes | Path, meta: ArtifactMeta, images: list[np.ndarray]) -> list[np.ndarray]:
    """Class maps of ``model`` for ``images`` through the shared pre/post-processing path."""
    masks = []
    with OnnxRuntimeBackend(model) as backend:
        for image in images:
            batch, placement = preprocess(image, meta.preprocess)
            masks.append(postprocess(backend.infer(batch)[0], placement))
    return masks


def compare_models(float_model: bytes | Path, quantized_model: bytes | Path, meta: ArtifactMeta,
                   gate: AccuracyGate, description: str, samples: list) -> AccuracyReport:
    """Run both models on every sample through the shared pre/post path and apply the gate."""
    ignore = meta.ignore_index if meta.ignore_index is not None else 255
    agreement = Agreement(meta.num_classes, ignore)  # the float model's prediction as the reference
    truth_float = ConfusionMatrix(meta.num_classes, ignore)
    truth_quant = ConfusionMatrix(meta.num_classes, ignore)
    labelled = all(mask is not None for _, mask in samples)
    images = [image for image, _ in samples]
    expected_masks = predict_masks(float_model, meta, images)
    actual_masks = predict_masks(quantized_model, meta, images)
    for (_, mask), expected, actual in zip(samples, expected_masks, actual_masks):
        agreement.update(actual, expected, mask)
        if labelled:
            truth_float.update(expected, mask)
            truth_quant.update(actual, mask)
    return _gate(gate, description, len(samples), agreement.pixel, agreement.miou,
                 truth_float.miou() if labelled else None, truth_quant.miou() if labelled else None)


def _gate(gate: AccuracyGate, description: str, images: int, pixel_agreement: float, agreement_miou: float,
          miou_float: float | None, miou_quant: float | None) -> AccuracyReport:
    if miou_float is not None:
        drop = (miou_float - miou_quant) * 100
        passed = drop <= gate.max_miou_drop
        rule = f"mIoU drop {drop:.2f} points <= {gate.max_miou_drop}"
    else:
        drop = None
        passed = agreement_miou >= gate.min_agreement
        rule = f"agreement mIoU {agreement_miou:.4f} >= {gate.min_agreement}"
    return AccuracyReport(images, description, pixel_agreement, agreement_miou, miou_float, miou_quant, drop,
                          rule, passed)
