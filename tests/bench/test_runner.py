"""``bench_artifacts`` (bench/runner.py) called as a library on tiny artifacts.

Rows side by side with the reference, iteration and duration budgets, a failed row among good ones.
"""

import time

import onnx

from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget

FAST = {"num_images": 2, "warmup": Budget(iterations=1), "iters": Budget(iterations=3), "block": 2, "settle": 1}


def _plain(result):
    """A result, or the reference, as the documented keys of bench.json, whether the runner returns dicts
    or dataclasses (which have ``to_dict``)."""
    return result.to_dict() if hasattr(result, "to_dict") else result


def _run(specs, **config):
    """The report and its results as plain dicts; specs go first and positionally (the field's name is moving)."""
    report = bench_artifacts(BenchConfig(tuple(str(spec) for spec in specs), **config))
    return report, [_plain(result) for result in report.results]


def test_artifacts_side_by_side_with_the_reference(artifacts, scenes):
    specs = (artifacts["onnxruntime"], f"{artifacts['openvino']}@openvino:f32", artifacts["torch"])
    report, results = _run(specs, reference=str(artifacts["torch"]), data=str(scenes), **FAST)
    onnx_row, openvino_row, torch_row = results
    assert [row["backend"] for row in results] == ["onnxruntime", "openvino", "torch"]
    assert report.failed == [] and len(report.images) == 2
    assert _plain(report.reference)["artifact"] == str(artifacts["torch"])
    for row in results:
        assert row["status"] == "ok" and row["error"] is None
        assert row["latency_ms"]["infer"]["count"] == 3  # the requested iterations
        assert row["latency_ms"]["end2end"]["count"] == 2  # one per image
        assert 0 <= row["miou"] <= 1 and set(row["per_class_iou"]) == set(torch_row["per_class_iou"])
    # the checkpoint run against itself as reference agrees everywhere
    assert torch_row["agreement_vs_reference"] == 1.0 and torch_row["delta_miou"] == 0
    assert onnx_row["agreement_vs_reference"] >= 0.99 and openvino_row["agreement_vs_reference"] >= 0.99


def test_a_row_that_fails_is_recorded_and_the_others_go_on(artifacts, tmp_path):
    model = onnx.load(artifacts["onnxruntime"])  # metadata intact, graph unloadable
    next(node for node in model.graph.node if node.op_type == "Conv").op_type = "NoSuchOp"
    onnx.save(model, tmp_path / "broken.onnx")
    specs = (artifacts["onnxruntime"], tmp_path / "broken.onnx", f"{artifacts['openvino']}@openvino:f32")
    report, results = _run(specs, **FAST)
    assert [row["status"] for row in results] == ["ok", "failed", "ok"]
    broken = results[1]
    assert [_plain(row) for row in report.failed] == [broken] and "NoSuchOp" in broken["error"]
    assert broken["latency_ms"] == {}  # never opened, never timed
    for row in (results[0], results[2]):
        assert row["latency_ms"]["infer"]["count"] == 3 and row["latency_ms"]["end2end"]["count"] == 2


def test_a_duration_budget_times_for_that_long(artifacts):
    seconds, block = 0.4, 5
    started = time.perf_counter()
    _, (row,) = _run([artifacts["onnxruntime"]], num_images=1, warmup=Budget(seconds=0.2),
                     iters=Budget(seconds=seconds), block=block, settle=0)
    assert time.perf_counter() - started >= 0.2 + seconds  # warm-up and timing both ran for their seconds
    samples = row["latency_samples_ms"]["infer"]
    assert row["latency_ms"]["infer"]["count"] == len(samples) > 0 and len(samples) % block == 0
    # Blocks start until the time is up: the last one starts inside it, and without settling calls
    # the timed calls fill most of it.
    assert 0.5 * seconds * 1000 <= sum(samples) <= seconds * 1000 + block * max(samples)
