"""SegmenterPool under load, small: benchmarks/pool_soak.py's logic with 8 threads x 15 requests.

Good images up to 256x256 (1x1 among them) and corrupt payloads mixed in, on the session's trained unet_tiny
(onnxruntime, KEEP policy: every image size is a new input shape). Every answer must equal the single-threaded
one (the mask, or the same one-line BadInputError), every thread must finish by the deadline and nothing may be
written on stderr, and process-wide state (OpenCV's log level, sys.stdout) must come out as it went in: two races
this load found (opencv_quiet's save/restore, redirect_stdout around session creation) are fixed and tested here.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest

from segdeploy.data.images import decode_image

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
pool_soak = importlib.import_module("pool_soak")

# The over-limit header makes PIL warn; segdeploy filters that warning, pytest's per-test capture brings it back.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

THREADS, REQUESTS, SEED = 8, 15, 20261129
DEADLINE_S = 60.0


@pytest.fixture(scope="module")
def payloads():
    goods = pool_soak.good_payloads(12, SEED, max_side=256)
    return goods, pool_soak.corrupt_payloads(goods, SEED)


@pytest.fixture(scope="module")
def load_run(artifacts, payloads) -> dict:
    """pool_soak.soak_pool's run (it puts back OpenCV's log level, sys.stdout and sys.stderr if the load changed
    them, so pytest's capture survives)."""
    args = argparse.Namespace(threads=THREADS, requests=REQUESTS, pool=2, seed=SEED, deadline=DEADLINE_S)
    return pool_soak.soak_pool(artifacts["onnxruntime"], args, good_count=len(payloads[0]), max_side=256)["run"]


def test_payloads_are_seeded_and_cover_the_extremes(payloads):
    goods, bads = payloads
    assert [p.data for p in pool_soak.good_payloads(12, SEED, max_side=256)] == [p.data for p in goods]
    assert (1, 1) in [p.size for p in goods] and (256, 256) in [p.size for p in goods]
    assert decode_image(goods[0].data).shape == (1, 1, 3)
    assert {"empty", "png-bomb-60000x60000", "jpeg-truncated-half"} <= {p.kind for p in bads}


def test_pool_under_load_gives_every_request_its_single_threaded_answer(load_run):
    assert load_run["stuck_threads"] == {}, "a client thread did not finish by the deadline (deadlock?)"
    assert load_run["failures_kept"] == [] and load_run["failures"] == 0
    assert load_run["completed"] == load_run["requests"] == THREADS * REQUESTS
    assert load_run["corrupt_requests"] > 0 and sum(load_run["messages"].values()) == load_run["corrupt_requests"]
    assert all("\n" not in message for message in load_run["messages"])
    assert load_run["stderr"] == ""
    assert load_run["passed"], load_run["checks"]


def test_decoding_under_load_leaves_opencv_logging_as_it_was(load_run):
    assert load_run["side_effects"]["OpenCV log level unchanged"], load_run["side_effects"]


def test_activating_pool_members_at_once_leaves_sys_stdout_as_it_was(load_run):
    assert load_run["side_effects"]["sys.stdout unchanged"] and load_run["side_effects"]["sys.stderr unchanged"]


def test_a_wrong_answer_and_a_stuck_thread_are_failures(artifacts, payloads):
    """The checks can fail: a wrong expected answer is a failure, a thread blocked past the deadline is stuck."""
    goods, bads = payloads
    pool = pool_soak.SegmenterPool(artifacts["onnxruntime"], size=1, threads=1)
    expected = {p.name: np.zeros(p.size, np.uint8) + 99 for p in goods[:2]} | {bads[0].name: "wrong message"}
    with pool.get():  # the only member is borrowed: client 1's good request blocks in pool.predict
        load = pool_soak.run_load(pool, goods[:2] + bads[:1], expected, [[2], [0]], deadline_s=1.0)
        assert load["tally"].failure_count == 1 and "differs" in load["tally"].failures[0]["failure"]
        assert list(load["stuck"]) == ["client-1"] and any("in get" in line for line in load["stuck"]["client-1"])
    pool.close()
