"""The CPU's instruction-set features that change INT8 and bf16 results and speed.

x86 CPUs without VNNI multiply uint8 by int8 with ``vpmaddubsw``, which saturates at
int16: the same INT8 artifact can be right on a VNNI machine and wrong on an AVX2 one.
Benchmarks record these flags; INT8 artifacts record the class they were gated on.
"""

from __future__ import annotations

import os
import platform
from functools import cache
from pathlib import Path

X86_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8")
ARM_FLAGS = ("asimddp", "i8mm", "bf16")  # dot product, int8 matrix multiply, bf16


@cache
def isa_flags() -> tuple[str, ...]:
    """The flags of ``X86_FLAGS``/``ARM_FLAGS`` this CPU reports in /proc/cpuinfo (Linux)."""
    reported: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() in ("flags", "Features"):
                    reported = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        return ()
    return tuple(flag for flag in (*X86_FLAGS, *ARM_FLAGS) if flag in reported)


def isa_class(flags: tuple[str, ...] | None = None, machine: str | None = None) -> str:
    """One word for what INT8 arithmetic this CPU has: x86-amx, x86-vnni, x86-avx2, x86, arm64-dot, arm64, ..."""
    flags = isa_flags() if flags is None else flags
    machine = (machine or platform.machine()).lower()
    if machine in ("x86_64", "amd64"):
        if "amx_int8" in flags:
            return "x86-amx"
        if "avx512_vnni" in flags or "avx_vnni" in flags:
            return "x86-vnni"
        return "x86-avx2" if "avx2" in flags else "x86"
    if machine in ("aarch64", "arm64"):
        return "arm64-dot" if "asimddp" in flags else "arm64"
    return machine


def full_range_int8() -> bool:
    """Whether this CPU multiplies 8-bit integers without the int16 saturation of AVX2's ``vpmaddubsw``
    (VNNI, AMX, ARM dot product): where 8-bit weights keep their accuracy."""
    return isa_class() in ("x86-vnni", "x86-amx", "arm64-dot")


def physical_cores() -> int:
    """Physical cores this process may run on (its CPU affinity, hyper-threads counted once): what ONNX
    Runtime, OpenVINO and PyTorch each default their CPU thread count to."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(tuple((topology / name).read_text().strip() for name in ("physical_package_id", "core_id")))
        except OSError:
            cores.add(("cpu", str(cpu)))  # no topology (containers without /sys): count the logical CPU
    return max(1, len(cores))
