"""Export parity with eager PyTorch, variants, metadata and failure behaviour.

The tiny models are exported once per session (conftest fixtures) and reused.
"""

import numpy as np
import onnx
import pytest
import torch

from segdeploy.artifact_meta import read_metadata
from segdeploy.backends.onnxruntime_backend import OnnxRuntimeBackend
from segdeploy.data.preprocess import normalize
from segdeploy.data.synthetic import make_scenes
from segdeploy.errors import BadInputError, CheckFailedError
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.metadata import OutputKind
from segdeploy.onnx_graph import load_onnx

SHAPES = [(1, 360, 480), (1, 100, 130), (2, 100, 130), (2, 64, 96), (3, 37, 45)]


def _eager(model, batch):
    with torch.no_grad():
        return model(torch.from_numpy(batch)).numpy()


@pytest.mark.parametrize("fixture", ["unet_export", pytest.param("swin_export", marks=pytest.mark.slow)])
def test_onnx_matches_eager_at_many_shapes(request, fixture):
    model, meta, report = request.getfixturevalue(fixture)
    assert report.verification.passed
    assert [c.shape[0] for c in report.verification.cases] == [1, 2]
    with OnnxRuntimeBackend(report.output) as backend:
        for batch, height, width in SHAPES:
            images, _ = make_scenes(batch, height, width, seed=height)
            inputs = normalize(images, meta.preprocess)
            actual, expected = backend.infer(inputs), _eager(model, inputs)
            assert actual.shape == (batch, meta.num_classes, height, width)
            np.testing.assert_allclose(actual, expected, atol=1e-4 * np.abs(expected).max(), rtol=1e-3)
            assert (actual.argmax(1) == expected.argmax(1)).mean() >= 0.999


def test_exported_file_carries_metadata_and_stable_names(unet_export):
    _, meta, report = unet_export
    model = load_onnx(report.output)
    onnx.checker.check_model(model)
    stored = read_metadata(model)
    assert stored.arch == meta.arch and stored.class_names == meta.class_names
    assert stored.preprocess == meta.preprocess
    assert stored.history[-1]["stage"] == "export"
    assert stored.history[-1]["verification"]["passed"] is True
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    dims = [d.dim_param for d in model.graph.output[0].type.tensor_type.shape.dim]
    assert dims == ["batch", "", "height", "width"]


def test_with_argmax_equals_argmax_of_logits(unet_export, unet_argmax_export):
    model, meta, _ = unet_export
    assert unet_argmax_export.meta.io.output == OutputKind.MASK
    images, _ = make_scenes(2, 100, 130, seed=5)
    inputs = normalize(images, meta.preprocess)
    with OnnxRuntimeBackend(unet_argmax_export.output) as backend:
        mask = backend.infer(inputs)
    assert mask.dtype == np.uint8 and mask.shape == (2, 100, 130)
    assert (mask == _eager(model, inputs).argmax(1)).mean() >= 0.999


@pytest.mark.slow  # two verified exports, ~9 s each on 2 cores
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_fused_normalisation_equals_external_normalisation(unet_export, export_variant, layout):
    _, meta, plain = unet_export
    fused = export_variant(fuse_normalize=True, input_layout=layout)
    assert fused.meta.io.input_dtype == "uint8" and fused.meta.io.input_layout == layout
    images, _ = make_scenes(2, 72, 90, seed=9)
    rgb = np.ascontiguousarray(images[..., ::-1])  # the contract's channel order is RGB
    raw = rgb if layout == "NHWC" else np.ascontiguousarray(rgb.transpose(0, 3, 1, 2))
    with OnnxRuntimeBackend(fused.output) as fused_backend, OnnxRuntimeBackend(plain.output) as plain_backend:
        got = fused_backend.infer(raw)
        expected = plain_backend.infer(normalize(images, meta.preprocess))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_static_export_has_fixed_shape(export_variant):
    report = export_variant(dynamic=False, input_size=(64, 96))
    dims = [d.dim_value for d in load_onnx(report.output).graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 64, 96]
    assert [c.shape for c in report.verification.cases] == [(1, 5, 64, 96)]


def test_failed_verification_raises_with_report_and_writes_nothing(unet_export, tmp_path):
    model, meta, _ = unet_export
    out = tmp_path / "strict.onnx"
    # Zero tolerance: float reassociation in ONNX Runtime differs in the last bits.
    with pytest.raises(CheckFailedError) as failure:
        export_onnx(model, out, ExportConfig(atol=0.0, rtol=0.0), meta)
    assert failure.value.report is not None and not failure.value.report.verification.passed
    assert failure.value.report.verification.cases[0].max_abs > 0
    assert list(tmp_path.iterdir()) == []


def test_bad_export_options(unet_export, tmp_path):
    model, meta, _ = unet_export
    with pytest.raises(BadInputError, match="opset"):
        export_onnx(model, tmp_path / "m.onnx", ExportConfig(opset=11), meta)
    with pytest.raises(BadInputError, match="NHWC"):
        export_onnx(model, tmp_path / "m.onnx", ExportConfig(input_layout="NHWC"), meta)
    with pytest.raises(BadInputError, match="does not exist"):
        export_onnx(model, tmp_path / "no" / "m.onnx", ExportConfig(verify=False), meta)
    assert list(tmp_path.iterdir()) == []


class _Custom(torch.nn.Module):
    """A user's own module (not a preset): export works given metadata."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_users_own_module_exports_with_metadata(tmp_path):
    from segdeploy.metadata import new_meta

    meta = new_meta("my_net", {}, 4)
    report = export_onnx(_Custom().eval(), tmp_path / "mine.onnx", ExportConfig(input_size=(32, 48)), meta)
    assert report.verification.passed
    assert read_metadata(load_onnx(report.output)).arch == "my_net"


@pytest.mark.slow  # the session's Swin-Seg export (~80 s on 2 cores)
def test_dynamic_swin_export_from_a_small_eval_size(swin_export):
    # At 64x80 every Swin stage has one window; tracing there would specialise the graph.
    _, meta, report = swin_export
    assert meta.preprocess.eval_size == (64, 80) and report.input_size == (64, 80)
    assert report.verification.passed and [c.shape[0] for c in report.verification.cases] == [1, 2]
