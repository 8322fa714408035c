"""One table across artifacts (rich and Markdown share its rows), JSON, and the per-artifact details."""

from __future__ import annotations

from pathlib import Path

from segdeploy.bench.results import AccuracySummary, BenchReport
from segdeploy.bench.stats import NOISY_CV, LatencyStats

COLUMNS = ("artifact", "backend", "precision", "input", "MB", "infer p50 ms", "infer p99 ms", "end2end p50 ms",
           "images/s", "mIoU", "ΔmIoU pts", "agreement mIoU")


def table_rows(report: BenchReport) -> list[tuple[str, ...]]:
    """One row of strings per result, COLUMNS order; failed rows show their error."""
    rows = []
    for result in report.results:
        size = "x".join(str(side) for side in result.input_size)
        head = (result.spec.name, result.spec.backend, result.precision, size, f"{result.size_mb:.1f}")
        if not result.ok:
            rows.append(head + (f"failed: {result.error}",) + ("",) * (len(COLUMNS) - len(head) - 1))
            continue
        accuracy = result.accuracy or AccuracySummary()
        end2end = result.latency_ms.get("end2end")
        rows.append(head + (
            _ms(result.infer, "p50"), _ms(result.infer, "p99"), _ms(end2end, "p50"),
            _number(result.throughput_ips.get("infer"), "{:.1f}"), _number(accuracy.miou, "{:.4f}"),
            _number(accuracy.delta_miou, "{:+.2f}"), _number(accuracy.miou_vs_reference, "{:.4f}"),
        ))
    return rows


def noisy_rows(report: BenchReport) -> list[str]:
    """Labels whose infer latency varied by more than NOISY_CV (coefficient of variation)."""
    return [f"{result.spec.label} (cv {result.infer.cv:.1%})" for result in report.results
            if result.ok and result.infer is not None and result.infer.noisy]


def noisy_warning(report: BenchReport) -> str | None:
    """The one sentence both the terminal and the Markdown print when the machine was noisy."""
    noisy = noisy_rows(report)
    return (f"Noisy machine: infer latency varied by more than {NOISY_CV:.0%} for {', '.join(noisy)}."
            if noisy else None)


def title(report: BenchReport) -> str:
    """What was measured on what: the table's title (terminal) and the Markdown's first line."""
    machine = report.machine
    threads = threads_used(report)
    reference = Path(report.reference.artifact).name if report.reference else "none"
    return (f"{len(report.images)} images ({report.config.data or 'synthetic scenes'}"
            f"{':' + report.config.split if report.config.data else ''}); reference {reference}; "
            f"{machine.get('cpu')} ({machine.get('isa_class')}), {machine.get('cores')} cores, threads {threads}")


def threads_used(report: BenchReport) -> str:
    """The CPU threads the backends reported using: ``2``, or per backend where they differ
    (``onnxruntime 2, openvino 4``); ``n/a`` when no row ran on a CPU runtime."""
    by_backend: dict[str, int] = {}
    for result in report.results:
        if result.threads is not None:
            by_backend.setdefault(str(result.spec.backend), result.threads)
    if len(set(by_backend.values())) == 1:
        return str(next(iter(by_backend.values())))
    return ", ".join(f"{backend} {count}" for backend, count in sorted(by_backend.items())) or "n/a"


def markdown(report: BenchReport) -> str:
    lines = [title(report), "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table_rows(report)]
    for result in report.results:
        accuracy = result.accuracy
        if accuracy is not None and accuracy.top_flips:
            described = "; ".join(f"{flip.reference} -> {flip.artifact} {flip.fraction_of_reference_class:.2%}"
                                  for flip in accuracy.top_flips[:3])
            worst = accuracy.worst_images[0]
            lines.append(f"\n{result.spec.label} at {'x'.join(map(str, result.input_size))}: most flipped "
                         f"{described}; least agreeing image {worst.image} ({worst.agreement:.2%})")
    warning = noisy_warning(report)
    if warning:
        lines.append(f"\n{warning}")
    return "\n".join(lines) + "\n"


def _ms(stats: LatencyStats | None, key: str) -> str:
    return "-" if stats is None else f"{getattr(stats, key):.2f}"


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
