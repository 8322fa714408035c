"""What the checkpoint benchmark scripts share: their arguments and the per-model Markdown sections."""

from __future__ import annotations

import argparse
from pathlib import Path

from segdeploy.fileio import atomic_write_text

HERE = Path(__file__).resolve().parent


def data_parser(description: str) -> argparse.ArgumentParser:
    """``--data`` (CamVid beside the repository) and ``--manifest`` (calibration)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "camvid"))
    parser.add_argument("--manifest", type=Path, default=HERE.parent / "calibration" / "camvid_train_100_balanced.json")
    return parser


def checkpoint_parser(description: str) -> argparse.ArgumentParser:
    """``checkpoint`` plus ``data_parser``'s options."""
    parser = data_parser(description)
    parser.add_argument("checkpoint", type=Path)
    return parser


def replace_section(target: Path, title: str, model: str, section: str) -> None:
    """Write ``section`` (starting ``## <model>``) into ``target``, replacing that model's old one."""
    previous = target.read_text() if target.exists() else f"# {title}\n\n"
    kept = [part for part in previous.split("\n## ") if part.split("\n", 1)[0].split(" ")[0] != model]
    atomic_write_text(target, "\n## ".join(kept).rstrip() + "\n\n" + section)


def replace_markdown_section(target: Path, heading: str, section: str) -> None:
    """Write ``section`` (starting with the line ``heading``, e.g. "## Pool") into ``target``, in place of the
    section under that heading: from its line to the next "# " or "## " heading outside code fences (so a "# "
    title's section is the text before the first "## "; "###" subsections belong to theirs). A new "# " section
    goes first, any other last; the rest of the file is kept as it was."""
    if section.splitlines()[:1] != [heading]:
        raise ValueError(f"the section must start with its heading line {heading!r}")
    lines = target.read_text().splitlines() if target.exists() else []
    starts, fenced = [], False
    for number, line in enumerate(lines):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith(("# ", "## ")):
            starts.append(number)
    new = section.rstrip("\n").splitlines()
    if heading in (lines[n] for n in starts):
        begin = next(n for n in starts if lines[n] == heading)
        end = next((n for n in starts if n > begin), len(lines))
        merged = lines[:begin] + new + [""] * (end < len(lines)) + lines[end:]
    elif heading.startswith("# "):
        merged = new + [""] * bool(lines) + lines
    else:
        merged = lines + [""] * bool(lines) + new
    atomic_write_text(target, "\n".join(merged).rstrip("\n") + "\n")


def quantize_isolated(model: Path, out: Path, config) -> dict:
    """``segdeploy.quantize_onnx`` in a fresh process (its calibration peak RSS is then its own, not this
    script's); the report as a dict, or ``{"error": message}`` when it refused or failed its gate."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_quantize_to_dict, model, out, config).result()


def _quantize_to_dict(model: Path, out: Path, config) -> dict:
    from segdeploy.errors import SegdeployError
    from segdeploy.quantize.stage import quantize_onnx

    try:
        return quantize_onnx(model, out, config).to_dict()
    except SegdeployError as error:
        return {"error": str(error)}
