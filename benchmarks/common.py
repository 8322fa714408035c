"""What the checkpoint benchmark scripts share: their arguments and the per-model Markdown sections."""

from __future__ import annotations

import argparse
from pathlib import Path

from segdeploy.fileio import atomic_write_text

HERE = Path(__file__).resolve().parent


def checkpoint_parser(description: str) -> argparse.ArgumentParser:
    """``checkpoint`` plus ``--data`` (CamVid beside the repository) and ``--manifest`` (calibration)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", default=str(HERE.parent.parent / "shared" / "data" / "camvid"))
    parser.add_argument("--manifest", type=Path, default=HERE.parent / "calibration" / "camvid_train_100_balanced.json")
    return parser


def replace_section(target: Path, title: str, model: str, section: str) -> None:
    """Write ``section`` (starting ``## <model>``) into ``target``, replacing that model's old one."""
    previous = target.read_text() if target.exists() else f"# {title}\n\n"
    kept = [part for part in previous.split("\n## ") if part.split("\n", 1)[0].split(" ")[0] != model]
    atomic_write_text(target, "\n## ".join(kept).rstrip() + "\n\n" + section)
