"""Accuracy of a quantized model against its float original on held-out images, and the gates.

Held-out images come from ``--eval-data/--eval-split``, else the calibration dataset's val
split, else seeded synthetic scenes (then only agreement can be checked). Calibration
images are never used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from segdeploy.backends.base import Backend
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.datasets import SegDataset, open_dataset, open_image_folder
from segdeploy.data.preprocess import model_output, postprocess, prepare
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError
from segdeploy.metadata import ArtifactMeta
from segdeploy.metrics import Agreement, ConfusionMatrix
from segdeploy.quantize.calibration import CalibrationSource
from segdeploy.quantize.config import AccuracyGate, AccuracyReport

SYNTHETIC_EVAL_IMAGES = 8


def held_out_images(gate: AccuracyGate, meta: ArtifactMeta, source: CalibrationSource | None = None):
    """(description, list of (image, mask or None)) for evaluation; never calibration images.

    In order: ``--eval-data``; the calibration dataset's other labelled split; the calibration
    folder's other images (unlabelled: agreement only); seeded synthetic scenes only without any of
    these (a model trained on them, or a quantization without calibration such as FP16).
    """
    dataset, where = _evaluation_dataset(gate, source)
    calibration = {path.resolve() for path in (source.files if source else ())}
    indices = [i for i in range(len(dataset)) if dataset.pairs[i][0].resolve() not in calibration] if dataset else []
    if dataset is not None and not indices and dataset.has_masks:
        raise BadInputError("every evaluation image is also a calibration image; pass another --eval-split")
    if not indices:  # no real images to hold out (none given, or an image folder too small to split)
        height, width = meta.preprocess.eval_size
        images, _ = make_scenes(SYNTHETIC_EVAL_IMAGES, height, width, seed=777)
        return "synthetic scenes (no --eval-data; agreement only)", [(image, None) for image in images]
    samples = [dataset[i] for i in indices[: gate.eval_images]]
    labelled = "" if dataset.has_masks else ", unlabelled: agreement only"
    return f"{where} ({len(samples)} images{labelled})", [(sample.image, sample.mask) for sample in samples]


def _evaluation_dataset(gate: AccuracyGate, source: CalibrationSource | None) -> tuple[SegDataset | None, str]:
    if gate.eval_data:
        split = gate.eval_split or "val"
        return open_dataset(gate.eval_data, split), f"{gate.eval_data}:{split}"
    if source is not None and source.dataset_root is not None:
        split = gate.eval_split or source.eval_split or "val"
        try:
            return open_dataset(source.dataset_root, split), f"{source.dataset_root}:{split}"
        except BadInputError:
            pass
    if source is not None and source.image_folder is not None:
        return open_image_folder(source.image_folder), f"{source.image_folder} (images not used to calibrate)"
    return None, ""


def predict_masks(model: bytes | Path, meta: ArtifactMeta, images: list[np.ndarray],
                  runtime: str = "onnxruntime") -> list[np.ndarray]:
    """Class maps of ``model`` for ``images`` on ``runtime`` (onnxruntime, or openvino at f32) through the
    shared pre/post-processing path."""
    with _backend(model, runtime) as backend:
        masks = []
        for image in images:
            batch, placement = prepare(image, meta.preprocess, meta.io)
            masks.append(postprocess(model_output(backend.infer(batch), meta.io)[0], placement))
    return masks


@contextlib.contextmanager
def _backend(model: bytes | Path, runtime: str) -> Iterator[Backend]:
    if runtime == "onnxruntime":
        with OnnxRuntimeBackend(model) as backend:
            yield backend
        return
    from segdeploy.backends.openvino_backend import OpenVinoBackend

    with tempfile.TemporaryDirectory(prefix="segdeploy-gate.") as scratch:
        path = Path(scratch) / "model.onnx" if isinstance(model, bytes) else Path(model)
        if isinstance(model, bytes):  # OpenVINO reads models from files
            path.write_bytes(model)
        with OpenVinoBackend(path, precision="f32") as backend:
            yield backend


def compare_models(float_model: bytes | Path, quantized_model: bytes | Path, meta: ArtifactMeta, gate: AccuracyGate,
                   description: str, samples: list, runtimes: tuple[str, ...] = ("onnxruntime",)) -> AccuracyReport:
    """Run both models on every sample through the shared pre/post path and apply the gate on each of
    ``runtimes`` (the float model runs on ONNX Runtime); it passes only where every runtime passes."""
    images = [image for image, _ in samples]
    expected_masks = predict_masks(float_model, meta, images)
    reports = [_score(gate, description, samples, meta, expected_masks,
                      predict_masks(quantized_model, meta, images, runtime), runtime) for runtime in runtimes]
    first, others = reports[0], tuple(reports[1:])
    failed = [report for report in reports if not report.passed]
    gate_text = first.gate if not failed else "; ".join(f"{report.runtime}: {report.gate}" for report in failed)
    return dataclasses.replace(first, passed=not failed, gate=gate_text, other_runtimes=others)


def _score(gate: AccuracyGate, description: str, samples: list, meta: ArtifactMeta, expected_masks: list,
           actual_masks: list, runtime: str) -> AccuracyReport:
    ignore = meta.ignore_index if meta.ignore_index is not None else 255
    agreement = Agreement(meta.num_classes, ignore)  # the float model's prediction as the reference
    truth_float = ConfusionMatrix(meta.num_classes, ignore)
    truth_quant = ConfusionMatrix(meta.num_classes, ignore)
    labelled = all(mask is not None for _, mask in samples)
    for (_, mask), expected, actual in zip(samples, expected_masks, actual_masks):
        agreement.update(actual, expected, mask)
        if labelled:
            truth_float.update(expected, mask)
            truth_quant.update(actual, mask)
    report = _gate(gate, description, len(samples), agreement.pixel, agreement.miou,
                   truth_float.miou() if labelled else None, truth_quant.miou() if labelled else None)
    return dataclasses.replace(report, runtime=runtime)


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
