"""``segdeploy info [ARTIFACT] [--env]``: what an artifact is, or what this machine has."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from segdeploy.cli import console
from segdeploy.cli.options import InputSizeOpt, JsonOpt


def register(app: typer.Typer) -> None:
    app.command("info")(info_command)


def info_command(
    artifact: Annotated[str | None, typer.Argument(help="A .pt, .onnx or preset name; none lists presets.")] = None,
    env: Annotated[bool, typer.Option("--env", help="Versions and usable optional backends.")] = False,
    input_size: InputSizeOpt = None,
    json_path: JsonOpt = None,
) -> None:
    """Show an artifact's metadata, I/O, size and hash; presets with parameters and GFLOPs."""
    from segdeploy import info
    from segdeploy.fileio import write_json
    from segdeploy.sizes import parse_hw

    size = parse_hw(input_size) if input_size else None
    if env:
        result = info.describe_environment()
        _print_env(result)
    elif artifact:
        result = info.describe_artifact(artifact, size)
        _print_artifact(result)
    else:
        result = info.describe_presets(size or info.REPORT_SIZE)
        _print_presets(result)
    if json_path:
        write_json(json_path, result)


def _print_presets(rows: list[dict]) -> None:
    size = "x".join(map(str, rows[0]["input_size"])) if rows else ""
    table = Table(title=f"model presets (GFLOPs at {size}, 1 image)")
    for column in ("name", "params (M)", "GFLOPs", "description"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], f"{row['params'] / 1e6:.2f}", f"{row['gflops']:.1f}", row["description"])
    console.out.print(table)


def _print_artifact(result: dict) -> None:
    meta = result["meta"]
    pre = meta["preprocess"]
    table = Table(show_header=False, title=f"{result['kind']}: {result['path']}")
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("arch", meta["arch"]),
        ("classes", f"{meta['num_classes']}: {', '.join(meta['class_names'])}"),
        ("ignore index", str(meta["ignore_index"])),
        ("precision", result["precision"]),
        ("preprocess", f"{pre['channel_order']}, scale {pre['pixel_scale']:.6g}, mean {pre['mean']}, "
                       f"std {pre['std']}, {pre['resize_policy']}, eval {pre['eval_size'][0]}x{pre['eval_size'][1]}, "
                       f"divisor {pre['divisor']}"),
        ("predicts", _output_geometry(meta)),
    ]
    if "params" in result:
        rows.append(("params", f"{result['params'] / 1e6:.3f} M"))
    if "gflops" in result:
        rows.append(("GFLOPs", f"{result['gflops']} at {'x'.join(map(str, result['gflops_input_size']))}"))
    for key in ("opset", "size_bytes", "sha256"):
        if key in result:
            rows.append((key.replace("_", " "), str(result[key])))
    for direction in ("inputs", "outputs"):
        for tensor in result.get(direction, []):
            shape = "x".join(str(d) for d in tensor["shape"])
            rows.append((direction[:-1], f"{tensor['name']}: {tensor['dtype']} [{shape}]"))
    if meta.get("source"):
        digest = meta["source"].get("sha256")
        rows.append(("source", str(meta["source"].get("path")) + (f" (sha256 {digest[:12]})" if digest else "")))
    rows.append(("created by", meta["created_by"]))
    for key, value in rows:
        table.add_row(key, escape(value))
    console.out.print(table)


def _print_env(result: dict) -> None:
    table = Table(title=f"segdeploy {result['segdeploy']} on Python {result['python']}, {result['cpu_count']} CPUs")
    for column in ("package", "version", "usable", "detail"):
        table.add_column(column)
    for name, version in result["core"].items():
        table.add_row(name, version or "-", "yes" if version else "no", "core")
    for name, probe in result["backends"].items():
        install = f"pip install 'segdeploy[{probe['extra']}]'"
        detail = probe["detail"] if probe["usable"] else f"{probe['detail']} ({install})"
        table.add_row(name, probe.get("version", "-"), "yes" if probe["usable"] else "no", escape(detail))
    console.out.print(table)


def _output_geometry(meta: dict) -> str:
    """``logits at stride 4``, ``mask at the input resolution``: read back through the metadata's own types."""
    from segdeploy.metadata import ArtifactMeta

    io = ArtifactMeta.from_dict(meta).io
    return f"{io.output} at {io.describe_geometry()}"
