"""``segdeploy serve`` on the shared local Ray instance: answers equal to ``Segmenter``, load, faults,
backpressure, autoscaling and a SIGTERM drain, over loopback HTTP. Every test is bounded in requests and
time; the server it deploys is replaced by the next configuration or removed with the Ray instance."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import cv2
import httpx
import numpy as np
import pytest

from segdeploy.client import SegmentClient, ServerError
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.serve.config import ServeConfig
from segdeploy.serve.server import APP_NAME, deploy

pytestmark = pytest.mark.slow
KEY = "k-7f3a9c-never-logged"
SIZES = [(64, 80), (48, 64), (100, 90), (33, 47), (64, 80)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def base_config(artifacts):
    """unet_tiny (trained) ONNX, batching on, one replica with half a CPU, with an API key."""
    return ServeConfig(artifacts["onnxruntime"], threads=1, replica_cpus=0.5, port=_free_port(), api_key=KEY,
                       max_batch=8, batch_wait_ms=5)


_deployed: dict = {}


@pytest.fixture
def serve_with(ray_cluster):
    """``serve_with(config) -> url``: deploys ``config`` unless it is what runs already."""

    def run(config: ServeConfig) -> str:
        if _deployed.get("config") != config:
            _deployed["url"] = deploy(config, ray_cluster).url
            _deployed["config"] = config
        return _deployed["url"]

    return run


@pytest.fixture
def url(serve_with, base_config):
    return serve_with(base_config)


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(3)
    from segdeploy.data.synthetic import make_scenes

    scenes, _ = make_scenes(len(SIZES), 64, 80, seed=4)
    return [cv2.resize(scene, (w, h)) if (h, w) != (64, 80) else scene + rng.integers(0, 3, scene.shape, np.uint8)
            for scene, (h, w) in zip(scenes, SIZES)]


@pytest.fixture(scope="module")
def expected(artifacts, images):
    """What Segmenter.predict gives for each image alone, with the replica's options."""
    with Segmenter(artifacts["onnxruntime"], threads=1) as segmenter:
        return [segmenter.predict(image) for image in images]


def _png(image) -> bytes:
    return cv2.imencode(".png", image)[1].tobytes()


def _post(url, body, fmt="png", key=KEY, **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(f"{url}/v1/segment?format={fmt}", content=body, headers=headers, timeout=60)


def test_fifty_requests_in_every_format_equal_the_segmenter(url, images, expected, artifacts):
    meta = Segmenter(artifacts["onnxruntime"]).meta
    palette = np.asarray(meta.palette, np.uint8)
    for index in range(50):
        image, mask = images[index % len(images)], expected[index % len(images)]
        fmt = ("png", "ids", "json", "overlay")[index % 4]
        reply = _post(url, _png(image) if index % 3 else cv2.imencode(".bmp", image)[1].tobytes(), fmt)
        assert reply.status_code == 200, reply.text
        if fmt in ("png", "ids"):
            decoded = cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_UNCHANGED)
            if fmt == "png":  # a palette PNG: OpenCV expands it to the palette's colours (BGR)
                assert np.array_equal(decoded, palette[mask][..., ::-1])
            else:
                assert np.array_equal(decoded, mask)
        elif fmt == "json":
            counts = [c["pixels"] for c in reply.json()["classes"]]
            assert counts == np.bincount(mask.ravel(), minlength=meta.num_classes).tolist()
        else:
            assert reply.headers["content-type"] == "image/jpeg"
            assert cv2.imdecode(np.frombuffer(reply.content, np.uint8), cv2.IMREAD_COLOR).shape == image.shape


def test_metadata_health_and_multipart(url, artifacts):
    from segdeploy.fileio import sha256_file

    assert httpx.get(f"{url}/healthz").json() == {"status": "ready"}  # no key needed for the probe
    metadata = httpx.get(f"{url}/v1/metadata", headers={"X-API-Key": KEY}).json()
    assert metadata["artifact"] == {"name": "m.onnx", "sha256": sha256_file(artifacts["onnxruntime"])}
    assert metadata["backend"] == "onnxruntime" and metadata["precision"] == "fp32"
    meta = Segmenter(artifacts["onnxruntime"]).meta
    assert metadata["classes"] == list(meta.class_names) and metadata["palette"] == [list(c) for c in meta.palette]
    assert metadata["preprocess"]["eval_size"] == [64, 80]
    reply = httpx.post(f"{url}/v1/segment", files={"file": ("a.png", _png(np.zeros((20, 30, 3), np.uint8)))},
                       headers={"X-API-Key": KEY})
    assert reply.status_code == 200 and reply.headers["content-type"] == "image/png"


def _replicas() -> list[str]:
    import ray

    return sorted(actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
                  if actor["name"].startswith(f"SERVE_REPLICA::{APP_NAME}"))


def test_bad_requests_are_4xx_never_restart_the_replica_and_leave_good_ones_alone(url, images, expected):
    before = _replicas()
    good = _png(images[0])
    bad = [(b"not an image at all", {}, 400), (good[:300], {}, 400), (good, {"content-type": "text/plain"}, 415),
           (good, {"content-type": "application/json"}, 415), (b"\x00" * 20_000_001, {}, 413),
           (_png(np.zeros((7000, 6000, 3), np.uint8)), {}, 413)]
    for body, headers, status in bad:
        reply = _post(url, body, **headers)
        assert reply.status_code == status and set(reply.json()) == {"error"}, reply.text
        good_reply = _post(url, good, "ids")
        assert good_reply.status_code == 200
        assert np.array_equal(cv2.imdecode(np.frombuffer(good_reply.content, np.uint8), 0), expected[0])
    assert _post(url, good, "gif").status_code == 400
    assert httpx.get(f"{url}/v1/nothing", headers={"X-API-Key": KEY}).status_code == 404
    assert _replicas() == before


def test_missing_or_wrong_keys_are_401_and_the_key_is_never_logged(url, images, ray_cluster):
    good = _png(images[0])
    assert _post(url, good, key=None).status_code == 401
    assert _post(url, good, key="wrong").status_code == 401
    assert httpx.get(f"{url}/v1/metadata").status_code == 401
    logs = "".join(path.read_text(errors="replace") for path in _log_files(ray_cluster.session_dir))
    assert "/v1/segment" in logs or "POST" in logs, "Ray Serve's access log is not where expected"
    assert KEY not in logs


def _log_files(session_dir):
    from pathlib import Path

    return [path for path in (Path(session_dir) / "logs").rglob("*") if path.is_file() and path.stat().st_size < 50e6]


def _load(url, images, expected, clients=16, per_client=25, stop=None):
    """``clients`` threads x ``per_client`` requests (fewer once ``stop`` is set) through SegmentClient:
    (latencies s, wrong, retried)."""
    client = SegmentClient(url, api_key=KEY, retries=8, backoff_s=0.1)

    def one_client(seed):
        latencies, wrong = [], 0
        for index in range(per_client):
            if stop is not None and stop.is_set():
                break
            pick = (seed + index) % len(images)
            started = time.perf_counter()
            mask = client.predict(images[pick])
            latencies.append(time.perf_counter() - started)
            wrong += int(not np.array_equal(mask, expected[pick]))
        return latencies, wrong

    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(one_client, range(clients)))
    return [t for lat, _ in results for t in lat], sum(w for _, w in results), client.retried


def test_load_sixteen_clients_all_answered_none_wrong(url, images, expected, record_property):
    latencies, wrong, _ = _load(url, images, expected)
    assert len(latencies) == 400 and wrong == 0
    p99 = float(np.percentile(latencies, 99))
    record_property("p99_ms", round(p99 * 1000, 1))
    print(f"16 clients x 25 requests: p50 {np.median(latencies) * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


def test_a_killed_replica_is_replaced_and_no_wrong_mask_is_returned(url, images, expected):
    import ray

    [victim] = _replicas()
    with ThreadPoolExecutor(1) as background:
        load = background.submit(_load, url, images, expected, 8, 12)
        time.sleep(0.5)
        ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
        latencies, wrong, retried = load.result(timeout=120)
    assert len(latencies) == 96 and wrong == 0
    deadline = time.monotonic() + 60
    while not (SegmentClient(url).healthy() and _replicas() and _replicas() != [victim]):
        assert time.monotonic() < deadline, "no replacement replica within 60 s"
        time.sleep(0.5)
    print(f"replica killed mid-load: {retried} requests retried, all 96 answered right")


def test_a_full_queue_is_503_with_retry_after(serve_with, base_config, images):
    url = serve_with(replace(base_config, max_batch=1, max_queued=1))
    body = _png(cv2.resize(images[0], (640, 512)))
    with ThreadPoolExecutor(24) as pool:
        replies = list(pool.map(lambda _: _post(url, body, "ids"), range(24)))
    statuses = [reply.status_code for reply in replies]
    assert set(statuses) == {200, 503}, statuses
    assert all(reply.headers.get("retry-after") == "1" for reply in replies if reply.status_code == 503)


def test_autoscaling_adds_a_replica_under_load_and_removes_it_after(serve_with, base_config, images, expected):
    url = serve_with(replace(base_config, autoscale=(1, 2), scale_down_s=2.0, max_batch=2))
    assert len(_replicas()) == 1
    enough = threading.Event()
    with ThreadPoolExecutor(1) as background:
        load = background.submit(_load, url, images, expected, 12, 400, enough)
        deadline = time.monotonic() + 40
        while len(_replicas()) < 2 and not load.done():
            assert time.monotonic() < deadline, "no second replica under load within 40 s"
            time.sleep(0.25)
        scaled_up = len(_replicas())
        time.sleep(1.0)  # the new replica takes requests too
        enough.set()
        _, wrong, _ = load.result(timeout=120)
    assert scaled_up == 2 and wrong == 0
    deadline = time.monotonic() + 40
    while len(_replicas()) > 1:
        assert time.monotonic() < deadline, "still 2 replicas 40 s after the load ended"
        time.sleep(0.5)


def test_sigterm_drains_requests_in_flight_then_exits_cleanly(ray_cluster, base_config, images, tmp_path):
    """The CLI joins the shared instance (--address), serves, and on SIGTERM answers what it holds."""
    import os
    import signal
    import subprocess
    import sys

    _deployed.clear()
    key_file = tmp_path / "key"
    key_file.write_text(KEY)
    process = subprocess.Popen(
        [sys.executable, "-m", "segdeploy", "serve", str(base_config.artifact), "--address", ray_cluster.address,
         "--replica-cpus", "0.5", "--threads", "1", "--api-key-file", str(key_file), "--max-batch", "8"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "SEGDEPLOY_API_KEY": ""})
    try:
        url = _wait_for_url(process)
        body = _png(cv2.resize(images[0], (480, 384)))
        with ThreadPoolExecutor(12) as pool:
            replies = [pool.submit(_post, url, body, "json") for _ in range(12)]
            time.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            statuses = [reply.result(timeout=60).status_code for reply in replies]
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err[-2000:]
    assert statuses.count(200) == 12, statuses
    assert "stopped: drained" in out and KEY not in out + err
    assert _post(url, body).status_code in (404, 503)  # the application is gone; the shared proxy remains


def _wait_for_url(process) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("serving "):
            return line.split(" at ", 1)[1].split()[0]
        assert line or process.poll() is None, process.stderr.read()[-2000:]
    raise AssertionError("segdeploy serve did not become ready within 90 s")


def test_json_summary_is_parseable_from_the_client(url, images):
    summary = json.loads(SegmentClient(url, api_key=KEY).segment(_png(images[1]), "json"))
    assert summary["height"] == 48 and summary["width"] == 64


def test_the_client_raises_client_errors_at_once(url):
    client = SegmentClient(url, api_key="wrong", retries=3)
    with pytest.raises(ServerError, match="HTTP 401: wrong API key"):
        client.predict(np.zeros((8, 8, 3), np.uint8))
    assert client.retried == 0
