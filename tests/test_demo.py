"""The README's main command, in its quick form, end to end."""

import json

from typer.testing import CliRunner

from segdeploy.cli.app import app


def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "-o", str(out), "--json", str(tmp_path / "d.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "d.json").read_text())
    rows = summary["bench"]["results"]
    backends = [row["backend"] for row in rows]
    assert backends[:2] == ["torch", "onnxruntime"] and "openvino" in backends[-2:]
    assert all(row["status"] == "ok" and 0 <= row["miou"] <= 1 for row in rows)
    assert summary["recommendation"].startswith("Recommended on this machine: ")
    assert summary["recommendation"] in result.stdout  # the demo ends with the line its table supports
    int8_rows = [row for row in rows if row["artifact"].endswith("model_int8.onnx")]
    assert [row["backend"] for row in int8_rows] in ([], ["onnxruntime", "openvino"])  # INT8 on both CPU runtimes
    # int8 (on two runtimes) and fp16 are either benchmarked or named as rejected
    assert len(rows) - len(int8_rows) + min(len(int8_rows), 1) + len(summary["rejected"]) == 6
    assert {"bench.json", "bench.md", "plots", "model.pt", "model.onnx", "model.xml"} <= {p.name for p in out.iterdir()}
    assert (out / "plots" / "latency_cdf.png").stat().st_size > 0
    assert "report, plots and artifacts are in" in result.stdout
