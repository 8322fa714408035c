"""``segdeploy bench`` on tiny artifacts: table, JSON schema, Markdown, plots, errors."""

import json

import pytest
from typer.testing import CliRunner

from segdeploy.cli.app import app

runner = CliRunner()
RESULT_KEYS = {"artifact", "backend", "precision", "input_size", "batch", "status", "error", "size_mb", "latency_ms",
               "throughput_ips", "miou", "per_class_iou", "pixel_acc", "delta_miou", "miou_vs_reference",
               "agreement_vs_reference"}
LATENCY_KEYS = {"min", "mean", "p50", "p90", "p95", "p99", "max", "std"}


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_bench_table_json_markdown_and_plots(artifacts, scenes, tmp_path):
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--engine", f"{artifacts['openvino']}@openvino:f32",
                    "--engine", artifacts["torch"], "--reference", artifacts["torch"], "--data", scenes,
                    "--num-images", 3, "--iters", 3, "--warmup", 1, "--input-size", "64x80,96x128",
                    "--json", tmp_path / "b.json", "--markdown", tmp_path / "b.md", "--plots", tmp_path / "plots")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["schema_version"] == 2 and {"cpu", "cores", "threads", "gpu", "versions"} <= set(report["machine"])
    assert len(report["results"]) == 6  # 3 artifacts x 2 sizes
    for row in report["results"]:
        assert RESULT_KEYS <= set(row) and row["status"] == "ok"
        assert LATENCY_KEYS <= set(row["latency_ms"]["infer"]) and LATENCY_KEYS <= set(row["latency_ms"]["end2end"])
        assert 0 <= row["miou"] <= 1 and set(row["per_class_iou"]) == set(report["results"][0]["per_class_iou"])
    torch_row = next(r for r in report["results"] if r["backend"] == "torch")
    assert torch_row["delta_miou"] == 0 and torch_row["agreement_vs_reference"] == 1  # the reference itself
    assert "| artifact |" in (tmp_path / "b.md").read_text()
    # The machine line says what the backends used, not the unset option ("threads None").
    used = {row["backend"]: row["threads"] for row in report["results"]}
    assert all(isinstance(count, int) and count >= 1 for count in used.values()), used
    assert "threads None" not in result.stdout and "threads None" not in (tmp_path / "b.md").read_text()
    if len(set(used.values())) == 1:
        assert f"threads {used['onnxruntime']}" in " ".join(result.stdout.split())
    assert {p.name for p in (tmp_path / "plots").iterdir()} >= {"latency_cdf.png", "per_class_iou.png", "worst_0.png"}


def test_without_data_only_agreement(artifacts, tmp_path):
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--reference", artifacts["torch"],
                    "--num-images", 2, "--iters", 2, "--warmup", 1, "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    row = json.loads((tmp_path / "b.json").read_text())["results"][0]
    assert row["miou"] is None and row["agreement_vs_reference"] >= 0.999


def test_incomparable_artifacts_exit_3(artifacts, unet_export, tmp_path):
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--engine", unet_export[2].output,
                    "--iters", 1, "--num-images", 1)
    assert result.exit_code == 3 and "cannot be compared" in result.stderr and "num_classes" in result.stderr


def test_failed_row_exits_1_and_others_still_run(artifacts, tmp_path):
    static = tmp_path / "static.onnx"
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx

    # static 32x40 input; the 64x80 scenes (native size, KEEP policy) cannot go through it
    export_onnx(str(artifacts["torch"]), static, ExportConfig(input_size=(32, 40), dynamic=False, verify=False))
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--engine", static,
                    "--iters", 2, "--warmup", 1, "--num-images", 2, "--json", tmp_path / "b.json")
    assert result.exit_code == 1 and "1 of 2 artifacts failed" in result.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["results"]
    assert [r["status"] for r in rows] == ["ok", "failed"] and rows[1]["error"]


@pytest.mark.parametrize("args", [["--iters", "0"], ["--warmup", "-1"], ["--batch", "0"]])
def test_bad_counts_are_usage_errors(artifacts, args):
    assert invoke("bench", "--engine", artifacts["onnxruntime"], *args).exit_code == 2


def test_images_without_masks_are_skipped_with_a_warning(artifacts, scenes, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(scenes, data)
    next((data / "val" / "masks").iterdir()).unlink()
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--data", data, "--num-images", 2, "--iters", 1,
                    "--warmup", 1, "--json", tmp_path / "b.json")
    assert result.exit_code == 0 and "1 files of" in result.stderr and "skipped" in result.stderr
    assert json.loads((tmp_path / "b.json").read_text())["warnings"]


@pytest.mark.parametrize("duration, seconds", [("0.3s", 0.3), ("1", 1.0)])  # a bare number is seconds too
def test_duration_times_each_artifact_for_that_many_seconds(artifacts, tmp_path, duration, seconds):
    result = invoke("bench", "--engine", artifacts["onnxruntime"], "--duration", duration, "--warmup", 1,
                    "--num-images", 1, "--json", tmp_path / "b.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b.json").read_text())
    assert report["config"]["iters"] == {"iterations": 0, "seconds": seconds}
    samples = report["results"][0]["latency_samples_ms"]["infer"]
    assert report["results"][0]["latency_ms"]["infer"]["count"] == len(samples) > 0
    # the last block starts before the time is up; settling calls between blocks are not timed
    assert 0.3 * seconds * 1000 <= sum(samples) <= seconds * 1000 + report["config"]["block"] * max(samples)
