"""A seeded subset of the fuzzing benchmark (benchmarks/fuzz.py): every reader of untrusted files, a few hundred
mutated inputs in all, run in the benchmark's process pool; none may escape the BadInputError contract.

Also checks the pool itself (a segfault, a hang and a memory blow-up are recorded and the run goes on) and that a
case is reproducible from (reader, index, seed).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
fuzz = importlib.import_module("fuzz")
fuzz_cases = importlib.import_module("fuzz_cases")

CASES_PER_READER = 24  # two passes over most schedules; ~20 s with 2 workers on 2 cores
SEED = 20261129


@pytest.fixture(scope="module")
def fuzz_root(tmp_path_factory, unet_export) -> Path:
    """Seeds for every reader, reusing the session's unet_tiny export (no second 15 s export)."""
    root = tmp_path_factory.mktemp("fuzz")
    fuzz.seeds_in(root, unet_export[2].output)  # reproducer lines name this folder (--seeds-dir)
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_cases_are_reproducible(fuzz_root):
    """The same (reader, index, seed) writes the same bytes and description; every kind of every reader generates."""
    for reader, spec in fuzz_cases.READERS.items():
        for index in range(len(spec.kinds)):
            first = fuzz_cases.make_case(fuzz_root, reader, index, SEED, fuzz_root / "a")
            files = _files(fuzz_root / "a")
            second = fuzz_cases.make_case(fuzz_root, reader, index, SEED, fuzz_root / "b")
            assert (first.kind, first.desc) == (second.kind, second.desc)
            assert files == _files(fuzz_root / "b"), f"{reader}:{index} is not reproducible"


def test_seeds_are_accepted(fuzz_root):
    """Unchanged seeds pass every reader, so the mutated cases start from valid files."""
    ctx = fuzz_cases.Context(fuzz_root)
    for reader in fuzz_cases.READERS:
        record = fuzz.run_case(fuzz_cases.seed_case(fuzz_root, reader, fuzz_root / "seed-check"), ctx)
        assert record["outcome"] == "accepted", (reader, record)


def test_pool_records_crash_hang_and_memory(fuzz_root):
    """A segfault, a hang and a memory blow-up become escape records; the worker is restarted, no case is lost."""
    cases = [("_selftest", index) for index in range(4)]
    records = fuzz.run_pool(cases, fuzz_root, SEED, workers=1, memory_gb=2.0, progress=False, warm=False)
    by_index = {record["index"]: record for record in records}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert [by_index[i]["escape"] for i in range(4)] == ["crash: SIGSEGV", "hang", "oom", "exception"]
    assert by_index[3]["stdout_bytes"] > 0 and by_index[3]["stderr_bytes"] > 0


def test_message_flags():
    """A message cut inside a word of its cause, or ending in a bare exception name, is flagged."""
    from segdeploy.errors import BadInputError

    try:
        try:
            raise ValueError("the header declares 60000x60000 pixels, more than allowed")
        except ValueError as exc:
            raise BadInputError("x.png is not readable: the header declares 60000x60000 pixels, more th") from exc
    except BadInputError as error:
        assert "cut mid-word" in fuzz.message_flags(error)
    assert "type name only" in fuzz.message_flags(BadInputError("m.onnx is not a readable ONNX model (DecodeError)"))
    assert fuzz.message_flags(BadInputError("m.onnx is truncated: 10 of 200 bytes")) == []


@pytest.mark.slow
def test_no_reader_escapes(fuzz_root):
    """Every reader turns each of its mutated inputs into a one-line BadInputError or a valid result."""
    cases = [(reader, index) for index in range(CASES_PER_READER) for reader in fuzz_cases.READERS]
    records = fuzz.run_pool(cases, fuzz_root, SEED, workers=2, memory_gb=3.0, progress=False)
    assert len(records) == len(cases)
    assert not [r for r in records if r["outcome"] == "generator error"]
    escapes = [fuzz.reproducer(r, SEED, fuzz_root) for r in records if r["outcome"] == "escape"]
    assert not escapes, f"{len(escapes)} escape(s):\n" + "\n".join(escapes)
