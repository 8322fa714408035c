"""Machine information recorded with every benchmark result."""

from __future__ import annotations

import os
import platform
from typing import Any

from segdeploy.info import describe_environment


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, thread setting and package versions, for benchmark JSON."""
    env = describe_environment()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "platform": env["platform"],
        "python": env["python"],
        "versions": {"segdeploy": env["segdeploy"], **env["core"],
                     **{name: probe.get("version") for name, probe in env["backends"].items() if probe["usable"]}},
    }
