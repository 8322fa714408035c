"""The HTTP API's rules without Ray: keys, formats, content types, limits, replies; the serve config."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from segdeploy.errors import BadInputError
from segdeploy.metadata import new_meta
from segdeploy.serve.config import ServeConfig, parse_autoscale, read_api_key
from segdeploy.serve.protocol import (
    HttpError,
    Limits,
    ReplyFormat,
    check_api_key,
    check_body_length,
    check_declared_length,
    decode_request_image,
    image_bytes,
    mask_summary,
    render,
    reply_format,
)

LIMITS = Limits(max_image_bytes=10_000, max_pixels=64 * 80)


def _png(height=64, width=80) -> bytes:
    return cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8))[1].tobytes()


def _status(call) -> tuple[int, str]:
    with pytest.raises(HttpError) as caught:
        call()
    return caught.value.status, caught.value.message


@pytest.mark.parametrize("headers", [{"authorization": "Bearer k3y"}, {"authorization": "bearer k3y"},
                                     {"x-api-key": "k3y"}])
def test_a_right_key_in_either_header_passes(headers):
    check_api_key(headers, "k3y")
    check_api_key({}, None)  # a server without a key checks nothing


@pytest.mark.parametrize("headers, fragment", [({}, "needs an API key"), ({"authorization": "Bearer nope"}, "wrong"),
                                               ({"x-api-key": "k3"}, "wrong"), ({"authorization": "k3y"}, "needs")])
def test_missing_or_wrong_keys_are_401_and_never_echo_the_key(headers, fragment):
    status, message = _status(lambda: check_api_key(headers, "k3y"))
    assert status == 401 and fragment in message and "k3y" not in message


def test_formats_default_to_png_and_refuse_others_with_400():
    assert reply_format({}) is ReplyFormat.PNG
    assert reply_format({"format": "overlay"}) is ReplyFormat.OVERLAY
    assert _status(lambda: reply_format({"format": "gif"}))[0] == 400


@pytest.mark.parametrize("content_type", ["", "application/octet-stream", "image/png", "image/jpeg; q=1",
                                          "application/x-www-form-urlencoded"])
def test_raw_bodies_are_taken_whatever_image_like_type_they_name(content_type):
    assert image_bytes(b"abc", content_type) == b"abc"


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "video/mp4"])
def test_non_image_content_types_are_415(content_type):
    assert _status(lambda: image_bytes(b"abc", content_type))[0] == 415


def _multipart(fields: dict[str, bytes]) -> tuple[bytes, str]:
    boundary = "b0undary"
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x.png"\r\n'
                    f"Content-Type: image/png\r\n\r\n".encode() + value + b"\r\n" for name, value in fields.items())
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def test_multipart_forms_give_their_file_field():
    image = _png()
    assert image_bytes(*_multipart({"file": image})) == image
    assert image_bytes(*_multipart({"upload": image})) == image  # the only part, whatever its name
    assert image_bytes(*_multipart({"note": b"hi", "image": image})) == image
    status, message = _status(lambda: image_bytes(*_multipart({"a": image, "b": image})))
    assert status == 400 and "'file'" in message


def test_byte_limits_are_413_from_the_header_or_the_body():
    assert _status(lambda: check_declared_length({"content-length": "10001"}, LIMITS))[0] == 413
    check_declared_length({"content-length": "10000"}, LIMITS)
    assert _status(lambda: check_body_length(10_001, LIMITS))[0] == 413


def test_decoding_sniffs_the_type_and_maps_problems_to_400_or_413():
    image = decode_request_image(_png(), LIMITS)
    assert image.shape == (64, 80, 3)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    assert decode_request_image(jpeg, LIMITS).shape == (64, 80, 3)
    status, message = _status(lambda: decode_request_image(_png(65, 80), LIMITS))
    assert status == 413 and "65x80" not in message and "80x65 pixels" in message
    assert _status(lambda: decode_request_image(b"GIF89a not really", LIMITS))[0] == 400
    assert _status(lambda: decode_request_image(_png()[:100], LIMITS))[0] == 400
    assert _status(lambda: decode_request_image(b"", LIMITS))[0] == 400


def test_replies_in_every_format():
    meta = new_meta("unet_tiny", {}, 3)
    mask = np.array([[0, 1, 1], [2, 2, 2]], np.uint8)
    palette_png = cv2.imdecode(np.frombuffer(render(ReplyFormat.PNG, mask, meta), np.uint8), cv2.IMREAD_UNCHANGED)
    ids_png = cv2.imdecode(np.frombuffer(render(ReplyFormat.IDS, mask, meta), np.uint8), cv2.IMREAD_UNCHANGED)
    assert ids_png.tolist() == mask.tolist() and palette_png.shape[:2] == mask.shape
    summary = json.loads(render(ReplyFormat.JSON, mask, meta))
    assert summary == mask_summary(mask, meta)
    assert [c["pixels"] for c in summary["classes"]] == [1, 2, 3] and summary["height"] == 2
    assert sum(c["fraction"] for c in summary["classes"]) == pytest.approx(1.0, abs=1e-5)
    overlay = render(ReplyFormat.OVERLAY, mask, meta, np.zeros((2, 3, 3), np.uint8))
    assert overlay[:3] == b"\xff\xd8\xff"


def test_serve_config_checks_its_values():
    config = ServeConfig("m.onnx", threads=2, autoscale=parse_autoscale("1:3"), api_key="secret")
    assert config.replica_range == (1, 3) and config.cpus_per_replica == 2.0 and "secret" not in repr(config)
    assert config.max_ongoing >= config.max_batch
    assert ServeConfig("m.onnx", replica_cpus=0.5).cpus_per_replica == 0.5
    for bad in ({"autoscale": (3, 1)}, {"max_batch": 0}, {"replica_cpus": 0.0}, {"port": 70000}, {"api_key": " "},
                {"backend": "tflite"}):
        with pytest.raises(BadInputError):
            ServeConfig("m.onnx", **bad)
    for text in ("3", "a:b", ""):
        with pytest.raises(BadInputError, match="MIN:MAX"):
            parse_autoscale(text)


def test_the_api_key_comes_from_a_file_or_the_environment(tmp_path):
    (tmp_path / "key").write_text("  s3cret \nignored\n")
    assert read_api_key(tmp_path / "key", {"SEGDEPLOY_API_KEY": "env"}) == "s3cret"
    assert read_api_key(None, {"SEGDEPLOY_API_KEY": "env"}) == "env"
    assert read_api_key(None, {}) is None
    with pytest.raises(BadInputError, match="cannot read"):
        read_api_key(tmp_path / "missing", {})



def test_a_damaged_artifact_or_missing_backend_is_one_line_before_ray_starts(tmp_path, monkeypatch, artifacts):
    import threading

    import segdeploy.serve.server as server
    from segdeploy.errors import MissingDependencyError

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was started")

    monkeypatch.setattr(server, "ray_session", no_ray)
    (tmp_path / "broken.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(BadInputError, match="broken.onnx"):
        server.serve_artifact(ServeConfig(tmp_path / "broken.onnx"), threading.Event())
    with pytest.raises(BadInputError, match="missing.onnx"):
        server.serve_artifact(ServeConfig(tmp_path / "missing.onnx"), threading.Event())
    with pytest.raises(MissingDependencyError, match="tensorrt"):
        server.serve_artifact(ServeConfig(artifacts["onnxruntime"], backend="tensorrt"), threading.Event())
