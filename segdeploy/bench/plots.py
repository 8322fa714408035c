"""PNG plots of a bench run (matplotlib, from the ``bench`` extra).

``latency_cdf.png``: infer latency CDF per artifact; ``per_class_iou.png``: per-class IoU
per artifact on ground truth; ``worst_<n>.png``: for each artifact, its least agreeing
image: input / reference mask / artifact mask side by side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from segdeploy.bench.results import BenchReport, BenchResult
from segdeploy.errors import require
from segdeploy.fileio import atomic_output


def write_plots(report: BenchReport, folder: str | Path) -> list[Path]:
    """Write the plots into ``folder``; the worst-image panels re-run the artifact and the reference."""
    matplotlib = require("matplotlib", "bench")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []

    figure, axes = plt.subplots(figsize=(7, 4))
    for result in report.results:
        if not result.latency_samples_ms.get("infer"):
            continue
        label, values = result.spec.label, np.sort(result.latency_samples_ms["infer"])
        axes.step(values, np.arange(1, len(values) + 1) / len(values), where="post", label=label)
    axes.set(xlabel="infer latency (ms)", ylabel="fraction of iterations", title="Latency CDF")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    written.append(_save(figure, folder / "latency_cdf.png", plt))

    ious = [(r.spec.label, r.accuracy.per_class_iou) for r in report.results if r.accuracy and r.accuracy.per_class_iou]
    if ious:
        names = list(ious[0][1])
        figure, axes = plt.subplots(figsize=(max(7, len(names) * 0.8), 4))
        width = 0.8 / len(ious)
        for index, (label, iou) in enumerate(ious):
            values = [np.nan if iou[name] is None else iou[name] for name in names]
            axes.bar(np.arange(len(names)) + index * width, values, width, label=label)
        axes.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=45, ha="right")
        axes.set(ylabel="IoU", ylim=(0, 1), title="Per-class IoU on ground truth")
        axes.legend(fontsize=7)
        written.append(_save(figure, folder / "per_class_iou.png", plt))

    for index, (label, image, reference, mask, palette) in enumerate(_worst_images(report)):
        colours = np.asarray(palette, np.uint8)
        figure, axes = plt.subplots(1, 3, figsize=(12, 3.4))
        panels = (image[..., ::-1], colours[reference], colours[mask])
        titles = ("input", "reference", f"{label} ({np.mean(reference == mask):.1%} agree)")
        for axis, panel, title in zip(axes, panels, titles):
            axis.imshow(panel)
            axis.set_title(title, fontsize=9)
            axis.axis("off")
        written.append(_save(figure, folder / f"worst_{index}.png", plt))
    return written


def _save(figure, path: Path, plt) -> Path:
    figure.tight_layout()
    with atomic_output(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
    return path


def _worst_images(report: BenchReport):
    """(label, image, reference mask, artifact mask, palette) for each artifact's least agreeing image."""
    import cv2

    from segdeploy.runtime.segmenter import Segmenter

    if report.reference is None:
        return
    for result in report.results:
        if not result.ok or result.accuracy is None or not result.accuracy.worst_images:
            continue
        if is_reference(result, report):
            continue  # the reference agrees with itself everywhere: nothing to show
        image = cv2.imread(result.accuracy.worst_images[0].path)
        reference = Segmenter(report.reference.artifact, backend="torch", device="cpu", input_size=result.input_size)
        segmenter = Segmenter(result.spec.path, backend=result.spec.backend, device="cpu",
                              input_size=result.input_size, **result.spec.segmenter_options())
        with reference, segmenter:
            yield result.spec.label, image, reference.predict(image), segmenter.predict(image), segmenter.meta.palette


def is_reference(result: BenchResult, report: BenchReport) -> bool:
    """The row that runs the reference checkpoint itself (eager torch, no option)."""
    return (report.reference is not None and result.spec.backend == "torch" and result.spec.option is None
            and Path(result.spec.path).resolve() == Path(report.reference.artifact).resolve())
