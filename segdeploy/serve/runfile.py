"""The run file of a resumable output folder: which model and options made the outputs in it.

``OUT/.segdeploy-run.json`` records the artifact (sha256 of its file, and of the weights file beside an
OpenVINO .xml) and every option that changes output bytes. It is written atomically before the first output,
so an output not older than it was made as it says. A rerun into the folder must match it (then such outputs
are kept); anything else is refused, naming what differs, unless ``overwrite``: then the outputs of this run's
inputs are removed and a new run file is written, which makes every output left from before it (of inputs not
in this run) older than it, so never taken as done.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from segdeploy.errors import BadInputError, printable, shorten
from segdeploy.fileio import atomic_write_text, require_file, sha256_file
from segdeploy.reading import load_json
from segdeploy.runtime.predict import make_folder

RUN_FILE = ".segdeploy-run.json"
RUN_FORMAT = 1
HINT = "use --overwrite to replace its outputs, or another output folder"


def run_record(artifact: str | os.PathLike, options: dict) -> dict:
    """What a run file holds for ``artifact`` run with ``options`` (JSON values)."""
    artifact = require_file(artifact, "artifact")
    model = {"name": artifact.name, "sha256": sha256_file(artifact)}
    weights = artifact.with_suffix(".bin")
    if artifact.suffix.lower() == ".xml" and weights.is_file():  # an OpenVINO IR: its weights are in the .bin
        model["weights_sha256"] = sha256_file(weights)
    return {"format": RUN_FORMAT, "artifact": model, "options": options}


def prepare_folder(out: Path, record: dict, outputs: Iterable[str], overwrite: bool) -> None:
    """Make ``out`` ready for a run described by ``record`` whose inputs' files are named ``outputs`` (every
    kind of output they can have, also those this run does not write).

    Refuses (BadInputError) a folder made with another model or other options, or holding some of
    ``outputs`` without a run file, unless ``overwrite``. Removes temporary files an interrupted run left
    for ``outputs``; with ``overwrite`` also the ``outputs`` themselves, before the new run file is written.
    """
    outputs = set(outputs)
    existing = _read(out / RUN_FILE) if (out / RUN_FILE).exists() else None
    if not overwrite:
        if existing is None and any((out / name).exists() for name in outputs):
            raise BadInputError(f"{out} holds outputs of these inputs but no {RUN_FILE} saying what made them; "
                                f"{HINT}")
        if existing is not None and existing != record:
            raise BadInputError(f"{out} was made {_difference(existing, record)}; {HINT}")
    _remove_temporaries(out, outputs | {RUN_FILE})
    if overwrite:
        for name in outputs:
            _remove(out / name)
    if existing != record or overwrite:
        make_folder(out)
        atomic_write_text(out / RUN_FILE, json.dumps(record, indent=2) + "\n")


def outputs_done(out: Path, outputs: list[tuple[str, ...]]) -> list[bool]:
    """For each input's output names: whether all exist in ``out`` and are not older than its run file."""
    since = (out / RUN_FILE).stat().st_mtime_ns
    return [all(_written_since(out / name, since) for name in names) for names in outputs]


def _written_since(path: Path, since: int) -> bool:
    try:
        status = path.stat()
    except FileNotFoundError:
        return False
    return stat.S_ISREG(status.st_mode) and status.st_mtime_ns >= since


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:  # a folder of that name, no permission
        raise BadInputError(f"cannot remove {path} to replace it: {exc.strerror or exc}") from exc


def _read(path: Path) -> dict:
    """The run file's record; one BadInputError line when it is not one (damaged, foreign)."""
    try:
        record = load_json(path, "segdeploy run file")
    except BadInputError as error:
        raise BadInputError(f"{error}; {HINT}") from error
    if not isinstance(record, dict) or record.get("format") != RUN_FORMAT:
        raise BadInputError(f"{path} is not a segdeploy run file of format {RUN_FORMAT}; {HINT}")
    return record


def _difference(old: dict, new: dict) -> str:
    """How ``old`` differs from ``new``, as the end of "OUT was made ...": the model first, then options."""
    if old.get("artifact") != new["artifact"]:
        before = old.get("artifact") if isinstance(old.get("artifact"), dict) else {}
        return (f"by another model ({printable(str(before.get('name'))[:80])}, sha256 "
                f"{printable(str(before.get('sha256'))[:12])}; now {printable(new['artifact']['name'])}, sha256 "
                f"{new['artifact']['sha256'][:12]})")
    options = old.get("options") if isinstance(old.get("options"), dict) else {}
    keys = sorted(set(options) | set(new["options"]))
    changed = [f"{key} {printable(json.dumps(options.get(key)))} (now {json.dumps(new['options'].get(key))})"
               for key in keys if options.get(key) != new["options"].get(key)]
    return f"with other options: {shorten(', '.join(changed), 200)}"


def _remove_temporaries(out: Path, names: set[str]) -> None:
    """Delete the temporary files (``.<name>.<random>.tmp``, as ``atomic_output`` names them) that a killed
    run left in ``out`` for ``names``."""
    if not out.is_dir():
        return
    for entry in out.iterdir():
        if entry.name.startswith(".") and entry.name.endswith(".tmp"):
            target = entry.name[1:].rsplit(".", 2)[0]
            if target in names and entry.is_file():
                _remove(entry)
