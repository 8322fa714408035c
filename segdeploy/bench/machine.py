"""Machine information recorded with every benchmark result."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from typing import Any

from segdeploy.info import describe_environment
from segdeploy.isa import isa_class, isa_flags


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """NVIDIA GPU names from nvidia-smi (empty without a driver); torch-free."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else []


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model and ISA flags, cores, thread setting and package versions, for benchmark JSON."""
    env = describe_environment()
    return {
        "cpu": cpu_model(),
        "isa_flags": list(isa_flags()),
        "isa_class": isa_class(),
        "cores": os.cpu_count(),
        "threads": threads,
        "gpu": gpu_names(),
        "platform": env["platform"],
        "python": env["python"],
        "versions": {"segdeploy": env["segdeploy"], **env["core"],
                     **{name: probe.get("version") for name, probe in env["backends"].items() if probe["usable"]}},
    }
