"""scripts/gpu-check and its benchmarks on a machine without a GPU: one line and exit 4, nothing
written; the bench's report code runs with ``--device cpu`` (the variants the CPU has)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
gpu_tests_section = importlib.import_module("gpu_tests_section")


def _no_gpu() -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: scripts/gpu-check would run for real")


def _snapshot(folder: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize("command", [["bash", "scripts/gpu-check"], [sys.executable, "benchmarks/gpu_bench.py"],
                                     [sys.executable, "benchmarks/pinned_bandwidth.py"]],
                         ids=["gpu-check", "gpu_bench", "pinned_bandwidth"])
def test_without_a_gpu_it_exits_4_with_one_line_and_writes_nothing(command):
    _no_gpu()
    before = _snapshot(ROOT / "benchmarks")
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "GPU" in result.stderr and "Traceback" not in result.stderr
    assert _snapshot(ROOT / "benchmarks") == before


@pytest.mark.slow
def test_gpu_bench_report_on_the_cpu(tmp_path):
    result = subprocess.run([sys.executable, "benchmarks/gpu_bench.py", "--device", "cpu", "--models", "unet_tiny",
                             "--batches", "1,2", "--calls", "2", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(next((tmp_path / "results").glob("gpu-*.json")).read_text())
    assert {"cpu", "isa_flags", "gpu"} <= set(report["machine"]) and report["device"] == "cpu"
    rows = {(row["batch"], row["variant"]): row for row in report["results"]}
    assert set(rows) == {(batch, variant) for batch in (1, 2) for variant in ("fp32", "fp32 channels_last")}
    for (batch, variant), row in rows.items():
        assert row["input_shape"][0] == batch and row["wall_ms"]["median"] > 0
        assert row["agreement_vs_fp32"] == (1.0 if variant == "fp32" else pytest.approx(1.0, abs=1e-3))
    markdown = (tmp_path / "GPU.md").read_text()
    assert markdown.startswith("# GPU benchmarks") and "## The torch backend on the GPU" in markdown
    assert markdown.count("| unet_tiny |") == 4 and "not a benchmark" in markdown


def test_the_tests_section_quotes_pytest_and_the_failed_steps():
    log = ("NVIDIA H200, 580.159.04, 143771 MiB\n== gpu tests (12:00:00)\n..F\n"
           "FAILED tests/backends/test_torch_cuda.py::test_x - AssertionError\n1 failed, 2 passed in 9.87s\n")
    text = gpu_tests_section.section(log, "gpu tests (exit 1)")
    assert text.startswith(gpu_tests_section.SECTION) and "NVIDIA H200" in text
    assert "gpu-marked tests: 1 failed, 2 passed in 9.87s" in text and "failed steps: gpu tests (exit 1)" in text
    assert "`FAILED tests/backends/test_torch_cuda.py::test_x - AssertionError`" in text
    assert "failed steps: none" in gpu_tests_section.section(log, "")


def test_a_failing_variant_becomes_an_error_row_and_stops_alone():
    import numpy as np

    gpu_bench = importlib.import_module("gpu_bench")

    def refuse(batch):
        raise RuntimeError("operation not permitted when stream is capturing\nmore detail")

    batch = np.zeros((1, 3, 8, 8), np.float32)
    row = gpu_bench.Row(gpu_bench.VARIANTS[4], refuse, lambda: None)
    gpu_bench._guarded(row, lambda: gpu_bench._warm_up(row, batch))
    assert row.error == "RuntimeError: operation not permitted when stream is capturing"
    assert not gpu_bench._wants_more(row, calls=10)
    result = gpu_bench._result("unet", batch, row, reference=None)
    assert result["error"] == row.error and "wall_ms" not in result and result["variant"] == row.variant.label
