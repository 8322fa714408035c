"""One table across artifacts (rich and Markdown share its rows), JSON, and the per-artifact details."""

from __future__ import annotations

from pathlib import Path

from segdeploy.bench.runner import BenchReport

COLUMNS = ("artifact", "backend", "precision", "input", "MB", "infer p50 ms", "infer p99 ms", "end2end p50 ms",
           "images/s", "mIoU", "ΔmIoU pts", "agreement mIoU")


def table_rows(report: BenchReport) -> list[tuple[str, ...]]:
    """One row of strings per result, COLUMNS order; failed rows show their error."""
    rows = []
    for result in report.results:
        size = "x".join(str(side) for side in result["input_size"])
        option = result["label"].partition("@")[2].partition(":")[2]
        name = Path(result["artifact"]).name + (f":{option}" if option else "")
        head = (name, result["backend"], result["precision"], size, f"{result['size_mb']:.1f}")
        if result["status"] == "failed":
            rows.append(head + (f"failed: {result['error']}",) + ("",) * (len(COLUMNS) - len(head) - 1))
            continue
        latency = result["latency_ms"]
        rows.append(head + (
            _ms(latency.get("infer"), "p50"), _ms(latency.get("infer"), "p99"), _ms(latency.get("end2end"), "p50"),
            _number(result["throughput_ips"].get("infer"), "{:.1f}"), _number(result.get("miou"), "{:.4f}"),
            _number(result.get("delta_miou"), "{:+.2f}"), _number(result.get("miou_vs_reference"), "{:.4f}"),
        ))
    return rows


def noisy_rows(report: BenchReport) -> list[str]:
    """Labels whose infer latency varied by more than a few percent (coefficient of variation)."""
    from segdeploy.bench.stats import NOISY_CV

    return [f"{result['label']} (cv {result['latency_ms']['infer']['cv']:.1%})" for result in report.results
            if result["status"] == "ok" and "infer" in result["latency_ms"]
            and result["latency_ms"]["infer"]["cv"] > NOISY_CV]


def markdown(report: BenchReport) -> str:
    machine = report.machine
    lines = [f"Machine: {machine.get('cpu')}, {machine.get('cores')} cores, threads {machine.get('threads')}; "
             f"{len(report.images)} images; reference: "
             f"{report.reference['artifact'] if report.reference else 'none'}", "",
             "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows(report)]
    for result in report.results:
        flips = result.get("top_flips") or []
        if flips:
            described = "; ".join(f"{f['reference']} -> {f['artifact']} {f['fraction_of_reference_class']:.2%}"
                                  for f in flips[:3])
            lines.append(f"\n{result['label']} at {'x'.join(map(str, result['input_size']))}: most flipped "
                         f"{described}; least agreeing image {result['worst_images'][0]['image']} "
                         f"({result['worst_images'][0]['agreement']:.2%})")
    noisy = noisy_rows(report)
    if noisy:
        lines.append(f"\nNoisy machine: infer latency varied by more than 5 % for {', '.join(noisy)}.")
    return "\n".join(lines) + "\n"


def _ms(stats: dict | None, key: str) -> str:
    return "-" if not stats else f"{stats[key]:.2f}"


def _number(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def write_outputs(report: BenchReport, json_path=None, markdown_path=None, plots=None) -> list:
    """Write whichever of JSON, Markdown and plots are asked for; returns the plot paths."""
    from segdeploy.fileio import atomic_write_text, write_json

    if json_path:
        write_json(json_path, report.to_dict())
    if markdown_path:
        atomic_write_text(markdown_path, markdown(report))
    if not plots:
        return []
    from segdeploy.bench.plots import write_plots

    return write_plots(report, plots)
