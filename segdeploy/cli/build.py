"""``segdeploy build MODEL.onnx [-o MODEL.engine]``: a TensorRT engine and its manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import JsonOpt
from segdeploy.engine_manifest import HardwareCompat


def register(app: typer.Typer) -> None:
    app.command("build")(build_command)


def build_command(
    model: Annotated[Path, typer.Argument(help="A segdeploy ONNX (fp32, fp16 or int8 QDQ).")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Engine path (.engine, .trt or .plan).")
                      ] = None,
    min_shape: Annotated[str | None, typer.Option(help="NxCxHxW or input:NxCxHxW (default from metadata).")] = None,
    opt_shape: Annotated[str | None, typer.Option(help="Shape TensorRT tunes for (default: batch 1, eval size).")
                         ] = None,
    max_shape: Annotated[str | None, typer.Option(help="Largest shape (default: batch 4, twice the eval size).")
                         ] = None,
    workspace: Annotated[int | None, typer.Option(help="Workspace memory pool limit in MiB.")] = None,
    timing_cache: Annotated[Path | None, typer.Option(help="Timing cache to load and save (faster rebuilds).")
                            ] = None,
    opt_level: Annotated[int | None, typer.Option(help="Builder optimization level 0-5 (TensorRT default 3).")
                         ] = None,
    hardware_compat: Annotated[HardwareCompat, typer.Option(help="Run on other GPUs (ampere_plus).")
                               ] = HardwareCompat.NONE,
    version_compatible: Annotated[bool, typer.Option("--version-compatible", help="Run on later TensorRT.")
                                  ] = False,
    json_path: JsonOpt = None,
) -> None:
    """Build a strongly typed TensorRT engine: precision comes from the ONNX (no precision flags)."""
    from segdeploy.errors import BadInputError
    from segdeploy.trt.builder import BuildConfig, build_engine

    if model.is_dir():  # also "" (the current folder): no file name to derive the engine's from
        raise BadInputError(f"{model} is a folder, not an ONNX file")
    output = output or model.with_suffix(".engine")
    config = BuildConfig(min_shape, opt_shape, max_shape, workspace, str(timing_cache) if timing_cache else None,
                         opt_level, hardware_compat, version_compatible)
    console.run_and_report(lambda: build_engine(model, output, config, console.detail), _print, json_path)


def _print(report) -> None:
    profile = "; ".join(f"{name}: " + " / ".join("x".join(map(str, s)) for s in shapes)
                        for name, shapes in report.profile.items())
    console.out.print(f"wrote {report.output} ({report.size_bytes / 1e6:.1f} MB, {report.precision}, TensorRT "
                      f"{report.tensorrt} on {report.gpu}, {report.seconds:.0f} s) and {report.manifest}; "
                      f"profile min/opt/max {profile}")
