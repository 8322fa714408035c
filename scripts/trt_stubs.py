#!/usr/bin/env python3
"""Put TensorRT's type stubs in ``typings/`` for mypy; called by ``scripts/setup``.

Downloads the pinned ``tensorrt-stubs`` wheel (stubs generated from TensorRT 10.13's bindings),
checks its sha256, extracts only its ``.pyi`` files and patches the few lines that are not valid
Python. The wheel is never installed: it ships ``tensorrt/__init__.pyi``, so an installed copy
makes ``import tensorrt`` succeed as an empty namespace package and every "TensorRT missing"
check in segdeploy would believe TensorRT is present.

Idempotent: when ``typings/`` already holds this wheel with these patches (its stamp file says
so) nothing is downloaded. Exit 1 with one line on a hash or patch mismatch.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REQUIREMENT = "tensorrt-stubs==10.13.0.35.1"
WHEEL = "tensorrt_stubs-10.13.0.35.1-py3-none-any.whl"
SHA256 = "749a36a1f825db0800a82d0dabbf7ef49f3a9edc1e794c9545fb94a551613fea"
ROOT = Path(__file__).resolve().parent.parent
TYPINGS = ROOT / "typings"
STAMP = TYPINGS / "SOURCE.json"  # what typings/ was made from; compared before any download
STUB = "tensorrt_bindings/tensorrt.pyi"

# (file, 1-based line, text found there, replacement). The text is checked, so a changed stub fails
# loudly instead of being patched in the wrong place.
PATCHES = [
    # A required parameter after defaulted ones is a syntax error. TensorRT's docs show this signature
    # (channel_axis last, required); dropping the three defaults keeps every positional call valid and
    # is stricter, never laxer, than TensorRT. segdeploy does not call add_scale_nd.
    (STUB, 4748, "shift: Weights = None, scale: Weights = None, power: Weights = None, channel_axis: int",
     "shift: Weights | None, scale: Weights | None, power: Weights | None, channel_axis: int"),
    # `in` is a keyword: the plugin interfaces' parameter is renamed (only plugins implement these).
    (STUB, 5723, "(self, in: list", "(self, in_: list"),
    (STUB, 5944, "(self: IPluginV3, in: list", "(self: IPluginV3, in_: list"),
    (STUB, 6001, "(self: IPluginV3, in: list", "(self: IPluginV3, in_: list"),
    (STUB, 6137, "(self: IPluginV3, in: list", "(self: IPluginV3, in_: list"),
]


def stamp() -> dict:
    """The stamp of a complete extraction: the wheel's hash and the patches applied to it."""
    return {"requirement": REQUIREMENT, "sha256": SHA256, "patches": [list(patch) for patch in PATCHES]}


def is_current() -> bool:
    try:
        return json.loads(STAMP.read_text()) == stamp()
    except (OSError, ValueError):
        return False


def download(folder: Path) -> Path:
    """The pinned wheel in ``folder``, its sha256 checked (pip's own resolver may pick any index)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                    "--disable-pip-version-check", "--dest", str(folder), REQUIREMENT], check=True)
    wheel = folder / WHEEL
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"trt_stubs: {WHEEL} has sha256 {digest}, expected {SHA256}")
    return wheel


def extract(wheel: Path, folder: Path) -> None:
    """Only the ``.pyi`` files: no ``py.typed`` package, no ``.py`` code, no dist-info."""
    with zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if name.endswith(".pyi"):
                archive.extract(name, folder)


def patch(folder: Path) -> None:
    for relative, number, old, new in PATCHES:
        path = folder / relative
        lines = path.read_text().splitlines(keepends=True)
        if old not in lines[number - 1]:
            sys.exit(f"trt_stubs: {relative}:{number} does not contain {old!r}; the PATCHES list needs updating")
        lines[number - 1] = lines[number - 1].replace(old, new)
        path.write_text("".join(lines))


def main() -> None:
    if is_current():
        return
    with tempfile.TemporaryDirectory() as scratch:
        built = Path(scratch) / "typings"
        extract(download(Path(scratch)), built)
        patch(built)
        shutil.rmtree(TYPINGS, ignore_errors=True)
        shutil.move(built, TYPINGS)
    STAMP.write_text(json.dumps(stamp(), indent=1) + "\n")  # last: an interrupted run leaves no stamp
    print(f"trt_stubs: {REQUIREMENT} extracted and patched into {TYPINGS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
