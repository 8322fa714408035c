"""Latency statistics as trtexec reports them, and the warm-up/iteration budget parsers."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

from segdeploy.errors import UsageError

NOISY_CV = 0.05  # coefficient of variation above which the machine was noisy


@dataclass(frozen=True)
class LatencyStats:
    """Milliseconds over per-iteration samples (warm-up excluded)."""

    count: int
    min: float
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    std: float
    cv: float  # std / mean

    @property
    def noisy(self) -> bool:
        return self.cv > NOISY_CV

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def latency_stats(samples_ms: list[float] | np.ndarray) -> LatencyStats:
    """Statistics of ``samples_ms`` (linear-interpolated percentiles, population std)."""
    values = np.asarray(samples_ms, dtype=np.float64)
    if values.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p95, p99 = np.percentile(values, [50, 90, 95, 99])
    mean, std = float(values.mean()), float(values.std())
    return LatencyStats(int(values.size), float(values.min()), mean, float(p50), float(p90), float(p95), float(p99),
                        float(values.max()), std, std / mean if mean > 0 else 0.0)


@dataclass(frozen=True)
class Budget:
    """Run ``iterations`` times, or for ``seconds`` when that is set."""

    iterations: int = 0
    seconds: float = 0.0


_BUDGET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s?)\s*$")


def parse_budget(text: str | int, what: str, bare_is_seconds: bool = False) -> Budget:
    """``"20"`` -> 20 iterations, ``"2s"``/``"2.5s"`` -> seconds; zero or negative is a usage error.

    ``bare_is_seconds``: a number without unit means seconds (``--duration 10``).
    """
    match = _BUDGET.match(str(text))
    if not match:
        raise UsageError(f"{what} must be a count (20) or seconds (2s), got {text!r}")
    value, seconds = float(match.group(1)), bool(match.group(2)) or bare_is_seconds
    if value <= 0:
        raise UsageError(f"{what} must be positive, got {text!r}")
    if not seconds and value != int(value):
        raise UsageError(f"{what} as a count must be a whole number, got {text!r}")
    return Budget(seconds=value) if seconds else Budget(iterations=int(value))
