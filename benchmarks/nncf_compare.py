"""segdeploy's INT8 against NNCF as a CPU user runs it, side by side in one run, same calibration images.

Usage: python benchmarks/nncf_compare.py benchmarks/checkpoints/unet_small_camvid.pt
Exports the checkpoint (fp32 ONNX and IR), then makes, from the same 96 images of
calibration/camvid_train_100_balanced.json:
  - segdeploy's cpu-target INT8 (QDQ ONNX, the defaults of `segdeploy quantize --target cpu`);
  - segdeploy's openvino-target INT8 (IR by NNCF inside segdeploy, `--target openvino` defaults);
  - NNCF as its documentation shows it: `nncf.quantize` on the OpenVINO model with its defaults
    (ModelType.TRANSFORMER for graphs with MatMuls), saved with `ov.save_model`'s defaults.
One `segdeploy bench` run times every artifact on every runtime it can run on (2 threads, eval size,
100 timed calls in turns) and scores all CamVid val images; then OpenVINO's per-layer counters
(PERF_COUNT) break fp32 and INT8 time down by layer type and kernel: where INT8 pays and where not.
Writes benchmarks/results/nncf-compare-<model>-<isa_class>-<date>.json and its section of QUANTIZATION.md.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import tempfile
from collections import Counter
from pathlib import Path

from common import HERE, checkpoint_parser, replace_section

from segdeploy.artifact_meta import attach_openvino_metadata, read_artifact_meta
from segdeploy.bench.runner import BenchConfig, bench_artifacts
from segdeploy.bench.stats import Budget
from segdeploy.export.config import ExportConfig
from segdeploy.export.onnx_export import export_onnx
from segdeploy.export.openvino_ir import export_openvino
from segdeploy.fileio import write_json
from segdeploy.onnx_graph import load_onnx
from segdeploy.quantize.calibration import calibration_batches, resolve_calibration
from segdeploy.quantize.config import QuantConfig
from segdeploy.quantize.stage import quantize_onnx

THREADS, ROUNDS, CALIB_IMAGES, PROFILE_RUNS = 2, 100, 96, 20
# (row name, file key, bench spec suffix)
ROWS = (("fp32", "fp32.onnx", "onnxruntime"), ("fp32", "fp32.xml", "openvino:f32"),
        ("segdeploy cpu INT8 (QDQ ONNX)", "cpu.onnx", "onnxruntime"),
        ("segdeploy cpu INT8 (QDQ ONNX)", "cpu.onnx", "openvino:f32"),
        ("segdeploy openvino INT8 (IR, NNCF inside)", "openvino.xml", "openvino:f32"),
        ("NNCF defaults (IR)", "nncf.xml", "openvino:f32"))


def build(checkpoint: Path, scratch: Path, manifest: Path, data: str) -> dict[str, Path]:
    """Every artifact of ROWS in ``scratch``, from the same calibration images."""
    paths = {name: scratch / name for _, name, _ in ROWS}
    export_onnx(str(checkpoint), paths["fp32.onnx"], ExportConfig())
    export_openvino(paths["fp32.onnx"], paths["fp32.xml"])
    for target, name in (("cpu", "cpu.onnx"), ("openvino", "openvino.xml")):
        config = QuantConfig(precision="int8", target=target, calib=str(manifest), data_root=data,
                             num_images=CALIB_IMAGES)
        report = quantize_onnx(paths["fp32.onnx"], paths[name], config)
        print(f"built {name}: gate {report.accuracy.gate}", flush=True)
    nncf_as_documented(paths["fp32.onnx"], paths["nncf.xml"], manifest, data)
    print("built nncf.xml", flush=True)
    return paths


def nncf_as_documented(fp32: Path, out: Path, manifest: Path, data: str) -> None:
    """``nncf.quantize`` with its defaults on the same images; segdeploy's fp32 metadata attached (how to
    pre-process) so that ``segdeploy bench`` can run it, nothing else changed."""
    import nncf
    import openvino as ov

    meta = read_artifact_meta(fp32)
    files = resolve_calibration(str(manifest), CALIB_IMAGES, 0, "random", data).files
    model = load_onnx(fp32, load_weights=False)
    transformer = any(node.op_type in ("MatMul", "Gemm") for node in model.graph.node)
    with contextlib.redirect_stdout(io.StringIO()):
        quantized = nncf.quantize(ov.Core().read_model(str(fp32)), nncf.Dataset(list(calibration_batches(files, meta))),
                                  subset_size=len(files),
                                  model_type=nncf.ModelType.TRANSFORMER if transformer else None)
    ov.save_model(attach_openvino_metadata(quantized, meta.with_record("nncf_defaults", nncf=nncf.__version__)),
                  str(out))


def measure(paths: dict[str, Path], checkpoint: Path, data: str):
    specs = tuple(f"{paths[name]}@{suffix}" for _, name, suffix in ROWS)
    report = bench_artifacts(BenchConfig(artifacts=specs, reference=str(checkpoint), data=data,
                                         iters=Budget(iterations=ROUNDS), threads=THREADS, device="cpu"))
    return report, {(Path(result.spec.path).name, str(result.spec.backend)): result for result in report.results}


def layer_times(xml_or_onnx: Path, runs: int = PROFILE_RUNS) -> Counter:
    """OpenVINO's per-layer counters, summed by (layer type, kernel) over ``runs`` calls -> ms per call."""
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml_or_onnx), "CPU", {
        "PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": THREADS, "INFERENCE_PRECISION_HINT": "f32",
        "PERF_COUNT": True})
    request = compiled.create_infer_request()
    shape = [dim.get_length() if dim.is_static else None for dim in compiled.input(0).get_partial_shape()]
    meta = read_artifact_meta(xml_or_onnx)
    height, width = meta.preprocess.eval_size
    batch = np.random.default_rng(0).standard_normal((1, shape[1] or 3, height, width)).astype(np.float32)
    totals: Counter = Counter()
    for call in range(runs + 2):
        request.infer({0: batch})
        if call >= 2:  # the first calls compile kernels
            for layer in request.profiling_info:
                if layer.status == layer.Status.EXECUTED:
                    totals[(layer.node_type, layer.exec_type)] += layer.real_time.total_seconds() * 1000 / runs
    return totals


def markdown(model: str, report, results: dict, profiles: dict[str, Counter]) -> str:
    machine = report.machine
    lines = [f"## nncf-compare-{model}-{machine['isa_class']} (segdeploy INT8 vs NNCF; {machine['cpu']}, "
             f"{datetime.date.today()})", "",
             f"`python benchmarks/nncf_compare.py benchmarks/checkpoints/{model}.pt`. ISA flags: "
             f"{', '.join(machine['isa_flags'])}; {THREADS} threads, batch 1, eval size, {ROUNDS} timed calls per "
             f"row in turns, one run; mIoU on {len(report.images)} CamVid val images; the same {CALIB_IMAGES} "
             "calibration images for every INT8 row. `x fp32`: p50 over the fp32 p50 on the same runtime. "
             "`*`: noisy latency (cv > 0.05).", "",
             "| artifact | runtime | p50 ms | cv | x fp32 | val mIoU | drop vs fp32 | agreement mIoU |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for label, name, suffix in ROWS:
        backend = suffix.split(":")[0]
        lines.append(_row(label, backend, results.get((name, backend)),
                          results.get(("fp32.onnx" if backend == "onnxruntime" else "fp32.xml", backend))))
    lines += ["", _verdict(results), "", *_profile_table(profiles)]
    return "\n".join(lines) + "\n"


def _row(label: str, backend: str, result, fp32) -> str:
    if result is None or not result.ok:
        return f"| {label} | {backend} | failed: {result.error if result else 'missing'} | | | | | |"
    ratio = result.infer.p50 / fp32.infer.p50
    drop = 100 * (result.accuracy.miou - fp32.accuracy.miou)
    return (f"| {label} | {backend} | {result.infer.p50:.1f}{'*' if result.infer.noisy else ''} | "
            f"{result.infer.cv:.3f} | {ratio:.2f} | {result.accuracy.miou:.4f} | {drop:+.2f} | "
            f"{result.accuracy.miou_vs_reference:.4f} |")


def _verdict(results: dict) -> str:
    """segdeploy's fastest INT8 on OpenVINO against NNCF's defaults: latency ratio and mIoU difference."""
    nncf = results.get(("nncf.xml", "openvino"))
    ours = [results.get(key) for key in (("openvino.xml", "openvino"), ("cpu.onnx", "openvino"))]
    ours = [result for result in ours if result is not None and result.ok]
    if nncf is None or not nncf.ok or not ours:
        return "Comparison incomplete: an artifact failed (see the table)."
    best = min(ours, key=lambda result: result.infer.p50)
    return (f"segdeploy's fastest INT8 on OpenVINO ({Path(best.spec.path).name}) runs at "
            f"{best.infer.p50 / nncf.infer.p50:.2f}x NNCF's latency, mIoU {best.accuracy.miou:.4f} vs NNCF "
            f"{nncf.accuracy.miou:.4f}.")


def _profile_table(profiles: dict[str, Counter]) -> list[str]:
    """The eight costliest (layer type, kernel) pairs of each profiled artifact, ms per call."""
    lines = [f"OpenVINO per-layer counters (PERF_COUNT, {PROFILE_RUNS} calls; the counters add overhead, so "
             "totals exceed the p50 above): ms per call by layer type and kernel.", "",
             "| artifact | total ms | costliest layer types (kernel: ms) |", "| --- | --- | --- |"]
    for name, totals in profiles.items():
        top = "; ".join(f"{kind} ({kernel}): {ms:.1f}" for (kind, kernel), ms in totals.most_common(8))
        lines.append(f"| {name} | {sum(totals.values()):.1f} | {top} |")
    return lines


def main() -> None:
    args = checkpoint_parser(__doc__.splitlines()[0]).parse_args()
    model = args.checkpoint.stem
    with tempfile.TemporaryDirectory(prefix="nncf-compare.") as scratch:
        paths = build(args.checkpoint, Path(scratch), args.manifest, args.data)
        report, results = measure(paths, args.checkpoint, args.data)
        profiles = {name: layer_times(paths[name]) for name in ("fp32.xml", "openvino.xml", "nncf.xml")}
    title = f"nncf-compare-{model}-{report.machine['isa_class']}"
    stem = f"{title}-{datetime.date.today()}"
    write_json(HERE / "results" / f"{stem}.json", {
        "model": model, "machine": report.machine, "bench": report.to_dict(),
        "profiles": {name: [{"layer": kind, "kernel": kernel, "ms": round(ms, 3)}
                            for (kind, kernel), ms in totals.most_common()] for name, totals in profiles.items()}})
    section = markdown(model, report, results, profiles)
    replace_section(HERE / "QUANTIZATION.md", "Quantization benchmark", title, section)
    print(section)


if __name__ == "__main__":
    main()
