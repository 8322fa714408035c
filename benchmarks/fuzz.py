"""Fuzzing benchmark: every segdeploy reader of untrusted files against mutated real files, in a process pool.

Usage: python benchmarks/fuzz.py [--cases N] [--readers a,b] [--seed S] [--workers 2] [--timeout 10]
       python benchmarks/fuzz.py --reproduce READER:INDEX [--seed S]   (writes the case, runs it with traceback)
Readers and cases: benchmarks/fuzz_cases.py (seeds are built by segdeploy itself in a temporary folder).
Contract: a failure caused by the input is a BadInputError whose message is one line; anything else is an
escape: another exception type, an invalid result, a multi-line message, output left behind, a crash of the
process (signal), a hang (the case's time limit), a memory blow-up (RLIMIT_AS: MemoryError or a kill).
Each case runs in a worker process (spawn) that imports the readers once; the parent waits with a time limit
and restarts a worker that died or hung, so no case is lost. Per case the worker also records bytes written to
fd 1 and fd 2 (native libraries' "noise") and Python warnings that reached the caller (target 0 for both).
Writes benchmarks/results/fuzz-<date>.json and benchmarks/FUZZ.md; prints a reproducer line per escape.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter, deque
from pathlib import Path

from fuzz_cases import READERS, SELFTEST, Context, InvalidResult, build_seeds, make_case, seed_case

HERE = Path(__file__).resolve().parent
# The full run: ~0.1 s a case for openvino and state_dict, ~0.04 s checkpoint, under 0.015 s the rest (2 workers).
FULL_CASES = {name: 3000 if name in ("openvino", "state_dict", "checkpoint") else 5000 for name in READERS}
OOM_WORDS = ("bad_alloc", "out of memory", "cannot allocate memory", "failed to allocate")


# -- in the worker -----------------------------------------------------------------------------------
class OutputCapture:
    """Points fd 1 and fd 2 at files for the duration of a case; ``read`` gives each one's size and first bytes.

    A library that prints (C++ logs, libpng, FFmpeg, onnxruntime's Python fallback message) shows up here.
    """

    def __init__(self, folder: Path, slot: int) -> None:
        self.files = {fd: open(folder / f"fd{fd}-{slot}.txt", "w+b") for fd in (1, 2)}  # noqa: SIM115
        self.saved = {fd: os.dup(fd) for fd in self.files}

    def __enter__(self) -> OutputCapture:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, file in self.files.items():
            file.seek(0)
            file.truncate()
            os.dup2(file.fileno(), fd)
        return self

    def __exit__(self, *exc_info) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved in self.saved.items():
            os.dup2(saved, fd)

    def read(self) -> dict:
        found = {}
        for fd, file in self.files.items():
            file.seek(0)
            found[fd] = (os.fstat(file.fileno()).st_size, file.read(300).decode("utf-8", "replace"))
        return {"stdout_bytes": found[1][0], "stderr_bytes": found[2][0],
                "output_head": (found[2][1] + found[1][1])[:300]}


def run_case(case, ctx: Context, capture: OutputCapture | None = None) -> dict:
    """Run one case in this process and classify it (see the module docstring)."""
    import contextlib

    with capture or contextlib.nullcontext(), warnings.catch_warnings(record=True) as caught:
        # Behind the filters already installed (Python's defaults and those segdeploy sets on purpose), every
        # warning is recorded each time: what a user's process would show, without the once-per-place registry.
        warnings.filterwarnings("always", append=True)
        started, error = time.perf_counter(), None
        try:
            {**READERS, **SELFTEST}[case.reader].call(case, ctx)
        except BaseException as exc:  # noqa: BLE001 - classifying every outcome is the point
            error = exc
        seconds = time.perf_counter() - started
    record = {"reader": case.reader, "index": case.index, "kind": case.kind, "desc": case.desc,
              "seconds": round(seconds, 4), **classify(error, case)}
    record.update(capture.read() if capture else {"stdout_bytes": 0, "stderr_bytes": 0, "output_head": ""})
    record.update(warnings=[f"{w.category.__name__}: {str(w.message).splitlines()[0][:200] if str(w.message) else ''}"
                            for w in caught])
    return record


def classify(error: BaseException | None, case) -> dict:
    """outcome (clean, accepted, escape), the escape's kind, the exception type, its message and message flags."""
    from segdeploy.errors import BadInputError, CheckFailedError, SegdeployError

    left = case.out is not None and case.out.exists() and any(p.is_file() for p in case.out.rglob("*"))
    if error is None:
        return {"outcome": "accepted"}
    text = str(error)
    base = {"type": type(error).__name__, "message": text if isinstance(error, BadInputError) else _first_line(text)}
    if isinstance(error, InvalidResult):
        return {**base, "outcome": "escape", "escape": "invalid result"}
    if isinstance(error, CheckFailedError) and "\n" not in text:
        # A documented outcome (exit 1): the artifact loaded and ran, and its output failed a check (NaN logits).
        return {**base, "outcome": "clean", "escape": None, "flags": message_flags(error)}
    if isinstance(error, BadInputError):
        escape = ("multi-line message" if "\n" in text or "\r" in text else "empty message" if not text.strip()
                  else "output left behind" if left else None)
        return {**base, "outcome": "escape" if escape else "clean", "escape": escape, "flags": message_flags(error)}
    if isinstance(error, MemoryError) or any(word in text.lower() for word in OOM_WORDS):
        return {**base, "outcome": "escape", "escape": "oom"}
    kind = "wrong error class" if isinstance(error, SegdeployError) else "exception"
    return {**base, "outcome": "escape", "escape": kind, "where": _where(error)}


def _first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _where(error: BaseException) -> str:
    """The innermost frame in segdeploy (where a guard is missing), else the innermost frame."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if "/segdeploy/" in f.filename] or frames
    return f"{ours[-1].filename.split('/segdeploy/')[-1]}:{ours[-1].lineno} {ours[-1].name}" if ours else "?"


def message_flags(error: BaseException) -> list[str]:
    """What makes a one-line message look wrong: cut mid-word, a bare type name or repr, control characters."""
    text, flags = str(error), []
    cause = error.__cause__ or error.__context__
    core = text.rstrip(").]'\" ")
    tail = core[-24:]
    if cause is not None and len(tail) >= 12 and tail[-1:].isalnum():
        cause_text = " ".join(str(cause).split())
        at = cause_text.find(" ".join(tail.split()))
        end = at + len(" ".join(tail.split()))
        if at >= 0 and end < len(cause_text) and cause_text[end].isalnum():
            flags.append("cut mid-word")
    if re.search(r"[(:]\s*\w*(Error|Exception)\)?$", text):
        flags.append("type name only")
    if re.search(r"\b\w+(Error|Exception)\(['\"]", text):
        flags.append("exception repr")
    if any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF or ord(c) == 0x7F for c in text):
        flags.append("control characters")
    if len(text) > 400:
        flags.append("over 400 characters")
    return flags


def worker_main(conn, root: str, base_seed: int, memory_gb: float, warm: bool, slot: int) -> None:
    """Import the readers (``warm``: and load torch, onnxruntime and OpenVINO's plugin), cap the address space,
    then answer (reader, index) messages until None."""
    import resource

    # Imported here, as an application imports segdeploy before reading: a module's warning filters are set at
    # import, and a first import inside run_case's catch_warnings block would have them discarded at its end.
    import segdeploy.data.images  # noqa: F401

    root_path = Path(root)
    ctx = Context(root_path)
    for reader in ("openvino", "checkpoint", "onnx") if warm else ():  # the cap leaves memory_gb on top of these
        run_case(seed_case(root_path, reader, root_path / f"work-{slot}"), ctx)
    with open("/proc/self/status", encoding="ascii") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = int(mapped + memory_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    capture = OutputCapture(root_path, slot)
    conn.send(("ready", os.getpid()))
    while (message := conn.recv()) is not None:
        reader, index = message
        try:
            case = make_case(root_path, reader, index, base_seed, root_path / f"work-{slot}")
        except Exception as exc:  # a generator bug: reported apart from the readers' escapes
            conn.send(("result", {"reader": reader, "index": index, "outcome": "generator error", "seconds": 0,
                                  "type": type(exc).__name__, "message": _first_line(str(exc)), "kind": "?"}))
            continue
        conn.send(("result", run_case(case, ctx, capture)))


# -- in the parent --------------------------------------------------------------------------------------------
class Slot:
    """One worker process and the case it is running; ``failed_starts`` counts starts in a row that never got ready."""

    def __init__(self, mp, args: tuple, number: int) -> None:
        self.mp, self.args, self.number, self.failed_starts, self.ready = mp, args, number, -1, False
        self.start()

    def start(self) -> None:
        self.failed_starts = 0 if self.ready else self.failed_starts + 1
        self.conn, child = self.mp.Pipe()
        self.process = self.mp.Process(target=worker_main, args=(child, *self.args, self.number), daemon=True)
        self.process.start()
        child.close()
        self.case, self.deadline, self.started = None, time.monotonic() + 300, time.monotonic()
        self.ready = False

    def send(self, case: tuple[str, int]) -> None:
        self.conn.send(case)
        self.case, self.started = case, time.monotonic()
        self.deadline = self.started + {**READERS, **SELFTEST}[case[0]].timeout * TIMEOUT_SCALE[0]

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                pass
        self.process.join(10)
        self.conn.close()


TIMEOUT_SCALE = [1.0]


def run_pool(cases: list[tuple[str, int]], root: Path, base_seed: int, workers: int, memory_gb: float,
             progress: bool = True, warm: bool = True) -> list[dict]:
    """Every case's record; crashes, hangs and kills become escape records and the worker is restarted."""
    import multiprocessing
    from multiprocessing.connection import wait

    mp = multiprocessing.get_context("spawn")
    pending, records = deque(cases), []
    slots = [Slot(mp, (str(root), base_seed, memory_gb, warm), n) for n in range(min(workers, len(cases)) or 1)]
    last_report = time.monotonic()
    try:
        while pending or any(slot.case for slot in slots):
            for slot in slots:
                if slot.ready and slot.case is None and pending:
                    slot.send(pending.popleft())
            deadline = min(slot.deadline for slot in slots)
            timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
            wait([s.conn for s in slots] + [s.process.sentinel for s in slots], timeout)
            for slot in slots:
                _collect(slot, records, root)
            if progress and time.monotonic() - last_report > 30:
                last_report = time.monotonic()
                print(f"  {len(records)}/{len(cases)} cases", flush=True)
    finally:
        for slot in slots:
            slot.stop(kill=slot.case is not None)
    return records


def _collect(slot: Slot, records: list[dict], root: Path) -> None:
    """Take the slot's message, or turn its death or overrun into an escape record and restart it."""
    if slot.conn.poll():
        try:
            tag, payload = slot.conn.recv()
        except (EOFError, OSError):
            tag, payload = "dead", None
        if tag == "ready":
            slot.ready, slot.deadline = True, float("inf")
            return
        if tag == "result":
            records.append(payload)
            slot.case, slot.deadline = None, float("inf")
            return
    if slot.process.is_alive() and time.monotonic() < slot.deadline:
        return
    hung = slot.process.is_alive()
    if hung:
        slot.process.kill()
    slot.process.join(10)
    if not slot.ready and slot.failed_starts >= 2:
        raise RuntimeError(f"fuzz worker {slot.number} did not start (exit code {slot.process.exitcode})")
    if slot.case is not None:
        reader, index = slot.case
        code = slot.process.exitcode
        escape = "hang" if hung else _death(code)
        head = (root / f"fd2-{slot.number}.txt").read_bytes()[:300].decode("utf-8", "replace")
        case = make_case(root, reader, index, slot.args[1], root / "parent-case")  # for its description
        records.append({"reader": reader, "index": index, "kind": case.kind, "desc": case.desc, "outcome": "escape",
                        "escape": escape, "type": escape.split(": ")[-1], "message": "", "output_head": head,
                        "seconds": round(time.monotonic() - slot.started, 2), "stderr_bytes": len(head),
                        "stdout_bytes": 0, "warnings": []})
    slot.conn.close()
    slot.start()


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name
        return "oom-kill: SIGKILL" if name == "SIGKILL" else f"crash: {name}"
    return f"crash: exit {code}"


# -- report -----------------------------------------------------------------------------------------------------
def normalise(message: str) -> str:
    """A message with paths, quoted values and numbers replaced, so messages about the same problem compare equal."""
    message = re.sub(r"(?<![\w.])/[^\s:;,'\"()]+", "<path>", message)
    message = re.sub(r"'[^'\s]*'|\"[^\"]*\"", "<s>", message)
    message = re.sub(r"\b0x[0-9a-fA-F]+\b", "N", message)
    return re.sub(r"\d+(\.\d+)?", "N", message)


def summarise(records: list[dict]) -> dict:
    """Per reader: counts by outcome and escape kind, noise, warnings, distinct messages, flags, slowest case."""
    summary = {}
    for reader in READERS:
        rows = [r for r in records if r["reader"] == reader]
        if not rows:
            continue
        clean = [r for r in rows if r["outcome"] == "clean"]
        messages = Counter(normalise(r["message"]) for r in clean)
        examples = {}
        for r in clean:
            examples.setdefault(normalise(r["message"]), (f"{reader}:{r['index']}", r["message"][:400]))
        flagged = [r for r in clean if r.get("flags")]
        slowest = max(rows, key=lambda r: r["seconds"])
        summary[reader] = {
            "cases": len(rows), "clean": len(clean), "accepted": sum(r["outcome"] == "accepted" for r in rows),
            "escapes": dict(Counter(r["escape"] for r in rows if r["outcome"] == "escape")),
            "escape_types": dict(Counter(f"{r['escape']}: {r.get('type')}" for r in rows if r["outcome"] == "escape")),
            "generator_errors": sum(r["outcome"] == "generator error" for r in rows),
            "noise_cases": sum(_noisy(r) for r in rows if r["outcome"] != "escape"),
            "stderr_bytes": sum(r.get("stderr_bytes", 0) for r in rows if r["outcome"] != "escape"),
            "stdout_bytes": sum(r.get("stdout_bytes", 0) for r in rows if r["outcome"] != "escape"),
            "noise_samples": sorted({normalise(r["output_head"][:120]) for r in rows if _noisy(r)})[:8],
            "warning_cases": sum(bool(r.get("warnings")) for r in rows),
            "warning_samples": sorted({w for r in rows for w in r.get("warnings", [])})[:5],
            "distinct_messages": len(messages),
            "messages": [{"count": n, "message": m, "case": examples[m][0], "example": examples[m][1]}
                         for m, n in messages.most_common(60)],
            "flags": dict(Counter(flag for r in flagged for flag in r["flags"])),
            "flag_samples": [{"flags": r["flags"], "case": f"{reader}:{r['index']}", "message": r["message"][:400]}
                             for r in flagged[:8]],
            "slowest": {"case": f"{reader}:{slowest['index']}", "seconds": slowest["seconds"],
                        "desc": slowest.get("desc", ""), "outcome": slowest["outcome"]},
            "case_seconds": round(sum(r["seconds"] for r in rows), 1),
            "seconds_by_kind": {kind: round(sum(r["seconds"] for r in rows if r["kind"] == kind), 1)
                                for kind in sorted({r["kind"] for r in rows})},
        }
    return summary


def _noisy(record: dict) -> bool:
    return record.get("stderr_bytes", 0) + record.get("stdout_bytes", 0) > 0


def reproducer(record: dict, base_seed: int, seeds_dir: str | os.PathLike | None = None) -> str:
    """One line: case, escape kind, exception and message, where, what the case did, the command that replays it."""
    what = f"{record.get('type', '')}: {record.get('message', '')[:160]}".strip(": ")
    where = f" at {record['where']}" if record.get("where") else ""
    return (f"{record['reader']}:{record['index']} [{record['escape']}] {what}{where} ({record.get('desc', '')}) "
            f"-> python benchmarks/fuzz.py --reproduce {record['reader']}:{record['index']} --seed {base_seed}"
            + (f" --seeds-dir {seeds_dir}" if seeds_dir else ""))


def markdown(summary: dict, escapes: list[dict], command: str, wall: float, base_seed: int,
             seeds_dir: str | None = None, machine: dict | None = None) -> str:
    source = source_state()
    edited = {True: ", with uncommitted edits", False: "", None: " (a copy)"}[source["segdeploy_edited"]]
    lines = ["# Fuzzing the readers of untrusted files", "",
             f"Command: `{command}` ({wall / 60:.1f} min wall) on segdeploy at commit {source['commit'][:10]}"
             f"{edited}. Cases, kinds and the contract: the docstrings of "
             "`benchmarks/fuzz.py` and `benchmarks/fuzz_cases.py`. Clean: BadInputError with a one-line message; "
             "accepted: returned a valid result; noise: cases that wrote to fd 1 or 2; warnings: cases where a Python "
             "warning reached the caller; messages: distinct clean messages after replacing paths, quoted values "
             "and numbers." + (f" Machine: {machine['cpu']} ({machine['isa_class']}), {machine['cores']} cores, "
                               f"{machine['threads']} workers." if machine else ""), "",
             "| reader | cases | clean | accepted | escapes | noise | warnings | messages | flagged msgs "
             "| slowest case | case s |", "|" + " --- |" * 11]
    for reader, row in summary.items():
        escaped = ", ".join(f"{kind} {n}" for kind, n in sorted(row["escapes"].items())) or "0"
        flagged = ", ".join(f"{flag} {n}" for flag, n in row["flags"].items()) or "0"
        slow = row["slowest"]
        lines.append(f"| {reader} | {row['cases']} | {row['clean']} | {row['accepted']} | {escaped} | "
                     f"{row['noise_cases']} | {row['warning_cases']} | {row['distinct_messages']} | {flagged} | "
                     f"{slow['case']} {slow['seconds']:.2f} s | {row['case_seconds']:.0f} |")
    lines += ["", f"## Escapes ({len(escapes)}; first 3 per reader and kind)", ""]
    shown = Counter()
    for record in escapes:
        key = (record["reader"], record["escape"], record.get("type"))
        shown[key] += 1
        if shown[key] <= 3:
            lines.append(f"- `{reproducer(record, base_seed, seeds_dir)}`".replace("|", "\\|"))
    lines += ["", "## Noise (what native libraries printed, numbers replaced by N)", ""]
    lines += [f"- {reader}: " + "; ".join(f"`{' '.join(sample.split())[:120]}`" for sample in row["noise_samples"])
              for reader, row in summary.items() if row["noise_samples"]] or ["- none"]
    return "\n".join(lines) + "\n"


def seeds_in(folder: str | os.PathLike, onnx_model: str | None) -> dict:
    """The seeds under ``folder``: built there unless an earlier run left them."""
    import json

    index = Path(folder) / "seeds.json"
    if not index.exists():
        print("building seeds in", folder, flush=True)
        index.write_text(json.dumps(build_seeds(folder, onnx_model), indent=1))
    return json.loads(index.read_text())


def reproduce(target: str, base_seed: int, onnx_model: str | None, seeds_dir: str | None) -> None:
    """Write case READER:INDEX beside the seeds and run its reader here, traceback shown."""
    reader, index = target.split(":")
    root = Path(seeds_dir or tempfile.mkdtemp(prefix="segdeploy-fuzz-"))
    seeds_in(root, onnx_model)
    case = make_case(root, reader, int(index), base_seed, root / f"repro-{reader}-{index}")
    print(f"case {target} ({case.kind}): {case.desc}\ninput: {case.path} (options {case.options})", flush=True)
    READERS[reader].call(case, Context(root))
    print("the reader accepted it and the result is valid")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, help="cases per reader (default: the full run's counts)")
    parser.add_argument("--readers", default=",".join(READERS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout-scale", type=float, default=1.0, help="times each reader's case time limit")
    parser.add_argument("--memory-gb", type=float, default=3.0, help="address space a worker may add per case")
    parser.add_argument("--onnx", help="reuse this segdeploy unet_tiny 5-class ONNX as the seed (skips the export)")
    parser.add_argument("--seeds-dir", help="build the seeds here and keep them (reused when present)")
    parser.add_argument("--reproduce", metavar="READER:INDEX")
    args = parser.parse_args()
    if args.reproduce:
        return reproduce(args.reproduce, args.seed, args.onnx, args.seeds_dir)
    readers = [name for name in args.readers.split(",") if name]
    unknown = sorted(set(readers) - set(READERS))
    if unknown:
        parser.error(f"unknown reader(s) {', '.join(unknown)}; known: {', '.join(READERS)}")
    TIMEOUT_SCALE[0] = args.timeout_scale
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="segdeploy-fuzz-") as scratch:
        scratch = args.seeds_dir or scratch
        seeds = seeds_in(scratch, args.onnx)
        check_seeds(Path(scratch), readers)
        counts = {name: args.cases or FULL_CASES[name] for name in readers}
        cases = [(name, i) for i in range(max(counts.values())) for name in readers if i < counts[name]]
        records = run_pool(cases, Path(scratch), args.seed, args.workers, args.memory_gb)
    write_report(records, seeds, args, time.monotonic() - started)


def check_seeds(root: Path, readers: list[str]) -> None:
    """Every reader must accept its unchanged seed here, or the fuzzing would measure nothing."""
    ctx = Context(root)
    for reader in readers:
        record = run_case(seed_case(root, reader, root / "seed-check"), ctx)
        if record["outcome"] != "accepted":
            raise SystemExit(f"the {reader} seed is not accepted: {record.get('type')}: {record.get('message')}")


def source_state() -> dict:
    """Which segdeploy was fuzzed: its folder, the repository's commit and whether segdeploy/ had edits."""
    import subprocess

    import segdeploy

    def git(*command: str) -> str:
        done = subprocess.run(["git", "-C", str(HERE.parent), *command], capture_output=True, text=True)
        return done.stdout.strip()

    folder = Path(segdeploy.__file__).parent
    inside = folder == HERE.parent / "segdeploy"  # else a copy (e.g. git archive HEAD) put first on PYTHONPATH
    return {"segdeploy": str(folder), "commit": git("rev-parse", "HEAD"),
            "segdeploy_edited": bool(git("status", "--porcelain", "segdeploy")) if inside else None}


def write_report(records: list[dict], seeds: dict, args, wall: float) -> None:
    summary = summarise(records)
    escapes = sorted((r for r in records if r["outcome"] == "escape"), key=lambda r: (r["reader"], r["index"]))
    command = "python benchmarks/fuzz.py " + " ".join(sys.argv[1:])
    stamp = datetime.date.today().isoformat()
    from segdeploy.bench.machine import machine_info
    from segdeploy.fileio import atomic_write_text, write_json

    machine = machine_info(args.workers)
    write_json(HERE / "results" / f"fuzz-{stamp}.json", {
        "command": command.strip(), "source": source_state(), "machine": machine,
        "seed": args.seed, "workers": args.workers,
        "memory_gb": args.memory_gb, "wall_seconds": round(wall, 1), "seeds_sha256": seeds, "readers": summary,
        "escapes": escapes, "generator_errors": [r for r in records if r["outcome"] == "generator error"][:50]})
    atomic_write_text(HERE / "FUZZ.md", markdown(summary, escapes, command.strip(), wall, args.seed, args.seeds_dir,
                                                 machine))
    for record in escapes:
        print(reproducer(record, args.seed, args.seeds_dir))
    for reader, row in summary.items():
        print(f"{reader}: {row['cases']} cases, {row['clean']} clean, {row['accepted']} accepted, escapes "
              f"{row['escape_types'] or 0}, noise {row['noise_cases']}, warnings {row['warning_cases']}, "
              f"{row['distinct_messages']} messages, {row['case_seconds']} s")


if __name__ == "__main__":
    main()
