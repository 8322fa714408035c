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
