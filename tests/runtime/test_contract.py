"""The backend contract, one suite over every backend this machine has."""

import numpy as np
import pytest

from segdeploy.data.preprocess import prepare
from segdeploy.runtime.artifacts import BackendOptions, make_backend, read_artifact_meta
from segdeploy.runtime.segmenter import Segmenter

BACKENDS = [
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(("torch", "cuda"), id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param(("onnxruntime", "cpu"), id="onnxruntime-cpu"),
    pytest.param(("openvino", "cpu"), id="openvino-cpu"),
]


@pytest.fixture(params=BACKENDS)
def backend_case(request, artifacts):
    kind, device = request.param
    return kind, device, artifacts[kind]


def test_constructor_has_no_side_effects_and_enter_exit_twice(backend_case, scene_images):
    kind, device, path = backend_case
    backend = make_backend(path, kind, device, BackendOptions())
    assert not backend.is_active
    meta = read_artifact_meta(path)
    batch, _ = prepare(scene_images[0], meta.preprocess, meta.io)
    outputs = []
    for _ in range(2):
        with backend:
            assert backend.is_active
            outputs.append(backend.infer(batch))
        assert not backend.is_active
    assert outputs[0].shape == (1, meta.num_classes, 64, 80) and outputs[0].dtype == np.float32
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_agrees_with_the_torch_reference(backend_case, artifacts, scene_images):
    kind, device, path = backend_case
    options = {"precision": "f32"} if kind == "openvino" else {}  # bf16 (auto here) has its own test
    with Segmenter(artifacts["torch"], device="cpu") as reference, \
            Segmenter(path, backend=kind, device=device, **options) as s:
        for image in scene_images:
            assert np.mean(s.predict(image) == reference.predict(image)) >= 0.999


def test_different_input_sizes_in_a_row(backend_case, scene_images):
    kind, device, path = backend_case
    with Segmenter(path, backend=kind, device=device) as segmenter:
        for height, width in ((64, 80), (100, 130), (37, 51), (64, 80)):
            image = np.ascontiguousarray(np.resize(scene_images[0], (height, width, 3)))
            mask = segmenter.predict(image)
            assert mask.shape == (height, width) and mask.dtype == np.uint8


def test_openvino_bf16_or_auto_reports_what_it_chose(artifacts, scene_images):
    with Segmenter(artifacts["openvino"], precision="auto") as auto, Segmenter(artifacts["torch"]) as reference:
        chosen = auto.backend.inference_precision
        assert chosen in ("f32", "bf16", "f16")
        agreement = np.mean(auto.predict(scene_images[0]) == reference.predict(scene_images[0]))
        assert agreement >= (0.99 if chosen != "f32" else 0.999)


def test_openvino_async_queue_matches_sync_infer(artifacts, scene_images):
    from segdeploy.runtime.openvino_backend import OpenVinoBackend

    meta = read_artifact_meta(artifacts["openvino"])
    batches = [prepare(image, meta.preprocess, meta.io)[0] for image in scene_images * 2]
    with OpenVinoBackend(artifacts["openvino"], precision="f32", hint="THROUGHPUT") as backend:
        expected = [backend.infer(batch) for batch in batches]
        for actual, reference in zip(backend.infer_many(batches), expected):
            np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-5)
