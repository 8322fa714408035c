import json

import onnx
import pytest

from segdeploy.artifact_meta import attach_metadata, read_metadata
from segdeploy.errors import BadInputError
from segdeploy.metadata import (
    SCHEMA_VERSION,
    ArtifactMeta,
    OutputKind,
    Precision,
    TensorIO,
    default_palette,
    new_meta,
)
from segdeploy.sizes import parse_hw, parse_hw_list


def _meta():
    return new_meta("unet_tiny", {"num_classes": 3, "depth": 2}, 3, class_names=("a", "b", "c"))


def test_dict_and_json_round_trip_keep_every_field():
    meta = _meta().with_record("export", opset=20).replace(precision=Precision.FP16)
    again = ArtifactMeta.from_json(meta.to_json())
    assert again == meta
    data = json.loads(meta.to_json())
    assert data["schema_version"] == 1  # nothing of version 2 used: older segdeploy still reads it
    assert data["preprocess"]["eval_size"] == [360, 480]
    assert data["io"]["output"] == "logits" and data["precision"] == "fp16"


def test_a_strided_output_is_schema_2_and_round_trips():
    meta = _meta().replace(io=TensorIO(output_stride=4))
    data = json.loads(meta.to_json())
    assert data["schema_version"] == SCHEMA_VERSION == 2 and data["io"]["output_stride"] == 4
    assert ArtifactMeta.from_json(meta.to_json()) == meta
    fixed = _meta().replace(io=TensorIO(output_size=(16, 20)))
    assert ArtifactMeta.from_json(fixed.to_json()).io.output_size == (16, 20)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"schema_version": SCHEMA_VERSION + 1}, "newer"),
        ({"schema_version": None}, "schema_version"),
        ({"class_names": ["a"]}, "class_names"),
        ({"num_classes": "three"}, "invalid"),
        ({"precision": "fp8"}, "invalid"),
    ],
)
def test_invalid_metadata_is_rejected_with_the_reason(change, message):
    data = _meta().to_dict() | change
    with pytest.raises(BadInputError, match=message):
        ArtifactMeta.from_dict(data)


def test_onnx_metadata_props_round_trip_and_replace():
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    model.metadata_props.add(key="other", value="kept")
    attach_metadata(model, _meta())
    attach_metadata(model, _meta().replace(io=_meta().io.__class__(output=OutputKind.MASK)))
    keys = [p.key for p in model.metadata_props]
    assert keys.count("segdeploy") == 1 and "other" in keys
    assert read_metadata(model).io.output == OutputKind.MASK


def test_onnx_without_metadata_says_which_flags_supply_it():
    model = onnx.helper.make_model(onnx.helper.make_graph([], "g", [], []))
    with pytest.raises(BadInputError, match="--input-size"):
        read_metadata(model)


def test_palette_colours_are_distinct():
    assert len(set(default_palette(256))) == 256


@pytest.mark.parametrize("text", ["360x480", " 360 X 480 "])
def test_sizes_parse_height_first(text):
    assert parse_hw(text) == (360, 480)


@pytest.mark.parametrize("text", ["360", "360x", "0x10", "-5x10", "axb", "360x480x3"])
def test_bad_sizes_are_rejected(text):
    with pytest.raises(BadInputError):
        parse_hw(text)


def test_size_lists():
    assert parse_hw_list("360x480,180x240") == [(360, 480), (180, 240)]


@pytest.mark.parametrize("change, message", [
    (lambda data: {**data, "history": [1]}, "history must be a list of records"),  # AttributeError later
    (lambda data: {**data, "palette": [[0, 0, float("inf")]] * data["num_classes"]}, "cannot convert float infinity"),
    (lambda data: {**data, "preprocess": {**data["preprocess"], "eval_size": [10**6, 10]}}, "eval_size must be two"),
], ids=["history", "inf-palette", "huge-eval-size"])
def test_metadata_values_found_by_fuzzing_are_bad_input(change, message):
    data = new_meta("unet_tiny", {"num_classes": 3}, 3).to_dict()
    with pytest.raises(BadInputError, match=message):
        ArtifactMeta.from_dict(change(data))


def test_numbers_too_long_to_read_are_bad_input():
    text = new_meta("unet_tiny", {"num_classes": 3}, 3).to_json()
    text = text.replace('"num_classes": 3', '"num_classes": 3' + "0" * 5000, 1)
    with pytest.raises(BadInputError, match="a number too long to read"):
        ArtifactMeta.from_json(text)
