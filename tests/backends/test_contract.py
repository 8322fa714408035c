"""The backend contract, one suite over every backend this machine has."""

import gc
import weakref

import numpy as np
import pytest
import torch

from segdeploy.artifact_meta import read_artifact_meta
from segdeploy.data.preprocess import postprocess, prepare
from segdeploy.errors import BadInputError, SegdeployError
from segdeploy.models.checkpoint import load_model
from segdeploy.runtime.artifacts import BackendOptions, make_backend
from segdeploy.runtime.segmenter import Segmenter

BACKENDS = [
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(("torch", "cuda"), id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param(("onnxruntime", "cpu"), id="onnxruntime-cpu"),
    pytest.param(("openvino", "cpu"), id="openvino-cpu"),
]
CPU_BACKENDS = ["torch", "onnxruntime", "openvino"]
# What each CPU backend holds while active: all must be gone after close().
RESOURCES = {"torch": ("_model",), "onnxruntime": ("_session",), "openvino": ("_compiled", "_request")}


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


def _eager_masks(checkpoint, images) -> list[np.ndarray]:
    """The reference, independent of every backend: the checkpoint's model called directly with torch."""
    model, meta = load_model(checkpoint)
    masks = []
    for image in images:
        batch, placement = prepare(image, meta.preprocess, meta.io)
        with torch.inference_mode():
            logits = model(torch.from_numpy(batch)).numpy()
        masks.append(postprocess(logits[0], placement))
    return masks


def test_agrees_with_the_torch_reference(backend_case, artifacts, scene_images):
    kind, device, path = backend_case
    options = {"precision": "f32"} if kind == "openvino" else {}  # bf16 (auto here) has its own test
    with Segmenter(path, backend=kind, device=device, **options) as segmenter:
        for image, expected in zip(scene_images, _eager_masks(artifacts["torch"], scene_images)):
            assert np.mean(segmenter.predict(image) == expected) >= 0.999


def test_different_input_sizes_in_a_row(backend_case, scene_images):
    kind, device, path = backend_case
    with Segmenter(path, backend=kind, device=device) as segmenter:
        for height, width in ((64, 80), (100, 130), (37, 51), (64, 80)):
            image = np.ascontiguousarray(np.resize(scene_images[0], (height, width, 3)))
            mask = segmenter.predict(image)
            assert mask.shape == (height, width) and mask.dtype == np.uint8


@pytest.mark.parametrize("kind", CPU_BACKENDS)
def test_activate_and_close_repeatedly_leaves_nothing(kind, artifacts, scene_images):
    backend = make_backend(artifacts[kind], kind, "cpu", BackendOptions())
    meta = read_artifact_meta(artifacts[kind])
    batch, _ = prepare(scene_images[0], meta.preprocess, meta.io)
    outputs = []
    for _ in range(3):
        backend.activate()
        held = [weakref.ref(getattr(backend, name)) for name in RESOURCES[kind]]
        assert backend.input_spec.name == meta.io.input_name
        outputs.append(backend.infer(batch))
        assert backend.last_inference_ms > 0
        backend.close()
        gc.collect()
        assert all(getattr(backend, name) is None for name in RESOURCES[kind])
        assert all(ref() is None for ref in held), "a closed backend's session/model is still referenced"
        with pytest.raises(SegdeployError, match="not active"):
            backend.infer(batch)
        with pytest.raises(SegdeployError, match="not active"):
            backend.input_spec  # noqa: B018 (the property raises)
    for output in outputs[1:]:
        np.testing.assert_array_equal(output, outputs[0])


@pytest.mark.parametrize("change, problem", [
    (lambda batch: batch[0], "rank 3, not 4"),
    (lambda batch: batch.astype(np.float64), "dtype float64, not float32"),
    (lambda batch: np.concatenate([batch, batch[:, :1]], axis=1), "dimension 1 is 4, not 3 (static in this artifact)"),
], ids=["rank", "dtype", "static-dim"])
@pytest.mark.parametrize("kind", CPU_BACKENDS)
def test_bad_batches_get_one_wording_from_every_backend(kind, change, problem, artifacts, scene_images):
    meta = read_artifact_meta(artifacts[kind])
    batch = change(prepare(scene_images[0], meta.preprocess, meta.io)[0])
    got = f"{batch.dtype} {'x'.join(map(str, batch.shape))}"
    with make_backend(artifacts[kind], kind, "cpu", BackendOptions()) as backend:
        with pytest.raises(BadInputError) as caught:
            backend.infer(batch)
        assert backend.last_inference_ms is None  # a refused batch is not timed
    assert str(caught.value) == f"input 'input' takes float32 ?x3x?x?, got {got}: {problem}"
    assert caught.value.exit_code == 3


def test_base_class_defaults_for_optional_reports(artifacts):
    with make_backend(artifacts["onnxruntime"], "onnxruntime", "cpu", BackendOptions()) as backend:
        assert backend.phase_timings_ms == {} and backend.execution_precision is None


def test_openvino_bf16_or_auto_reports_what_it_chose(artifacts, scene_images):
    with Segmenter(artifacts["openvino"], precision="auto") as auto:
        chosen = auto.backend.execution_precision
        assert chosen in ("f32", "bf16", "f16")
        agreement = np.mean(auto.predict(scene_images[0]) == _eager_masks(artifacts["torch"], scene_images[:1])[0])
        assert agreement >= (0.99 if chosen != "f32" else 0.999)


def test_openvino_async_queue_matches_sync_infer(artifacts, scene_images):
    from segdeploy.backends.openvino_backend import OpenVinoBackend

    meta = read_artifact_meta(artifacts["openvino"])
    batches = [prepare(image, meta.preprocess, meta.io)[0] for image in scene_images * 2]
    with OpenVinoBackend(artifacts["openvino"], precision="f32", hint="THROUGHPUT") as backend:
        expected = [backend.infer(batch) for batch in batches]
        for actual, reference in zip(backend.infer_many(batches), expected):
            np.testing.assert_allclose(actual, reference, rtol=1e-5, atol=1e-5)
        with pytest.raises(BadInputError, match="dtype float64, not float32"):
            backend.infer_many([batches[0].astype(np.float64)])


@pytest.mark.parametrize("kind", CPU_BACKENDS)
def test_every_cpu_backend_reports_the_threads_it_used(kind, artifacts):
    from segdeploy.isa import physical_cores

    with make_backend(artifacts[kind], kind, "cpu", BackendOptions(threads=1)) as backend:
        assert backend.threads == 1  # what was asked for
    assert backend.threads == 1  # kept after close for reports
    if kind == "torch":
        torch.set_num_threads(physical_cores())  # set_num_threads is process-wide: undo the 1 above
    with make_backend(artifacts[kind], kind, "cpu", BackendOptions()) as backend:
        assert backend.threads == physical_cores()  # each runtime's own default on this machine


def test_onnxruntime_messages_lose_their_cpp_signatures():
    from segdeploy.backends.onnxruntime_backend import ort_reason

    error = RuntimeError(
        "[ONNXRuntimeError] : 10 : INVALID_GRAPH : Load model from x.onnx failed:/onnxruntime_src/onnxruntime/core/"
        "graph/graph.cc:1617 void onnxruntime::Graph::InitializeStateFromModelFileGraphProto() This is an invalid "
        "model. Graph output (y) does not exist in the graph.")
    assert ort_reason(error) == "This is an invalid model. Graph output (y) does not exist in the graph."


def test_a_model_that_cannot_run_is_bad_input_not_a_crash(tmp_path, scene_images):
    # Found by fuzzing (issue 17): a flipped byte in a Conv's weight shape loads, then fails in run() with
    # onnxruntime's own Fail type, which reached the CLI as an internal error.
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 4, 1, 1], [0.0] * 8)  # 4 input channels, not 3
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, None, None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "bad.onnx")
    with make_backend(tmp_path / "bad.onnx", "onnxruntime", "cpu", BackendOptions()) as backend:
        with pytest.raises(BadInputError, match="onnxruntime cannot run the model on a 1x3x8x8 input: "):
            backend.infer(np.zeros((1, 3, 8, 8), np.float32))
