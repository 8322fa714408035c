"""GPU.md's section on what ``scripts/gpu-check`` ran: the GPU, the pytest summary, failed steps.

Usage (by scripts/gpu-check): python benchmarks/gpu_tests_section.py LOG "FAILED STEPS"
"""

from __future__ import annotations

import datetime
import re
import sys
from pathlib import Path

from common import replace_markdown_section

HERE = Path(__file__).resolve().parent
SECTION = "## What scripts/gpu-check ran"
SUMMARY = re.compile(r"^=*\s*(\d+ (passed|failed|skipped|error).*?)\s*=*$")


def section(log: str, failed_steps: str) -> str:
    lines = log.splitlines()
    gpu = lines[0] if lines else "unknown GPU"
    summaries = [match.group(1) for match in map(SUMMARY.match, lines) if match]
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    text = [SECTION, "",
            f"{datetime.date.today().isoformat()}, on {gpu} (nvidia-smi: name, driver, memory). "
            "`bash scripts/gpu-check`; its log is `benchmarks/results/gpu-check-<date>.log`.", "",
            f"- gpu-marked tests: {summaries[0] if summaries else 'no pytest summary in the log'}",
            f"- failed steps: {failed_steps or 'none'}"]
    text += [f"  - `{line}`" for line in failures]
    return "\n".join(text) + "\n"


def main() -> int:
    log_path, failed_steps = Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else ""
    replace_markdown_section(HERE / "GPU.md", SECTION, section(log_path.read_text(errors="replace"), failed_steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
