"""Draining a served application across its replicas before it is removed.

Ray Serve 2.60 leaves requests queued in its proxy hanging when their application is deleted (those
already on a replica are finished). So ``segdeploy serve`` stops in two steps: a small control actor
tells every replica to answer new requests with 503 + Retry-After (queued ones then reach a replica and
get that answer at once), each replica reports the requests it still holds, and the application is
deleted only when every replica has acknowledged and holds none.
"""

from __future__ import annotations

import time

from segdeploy.serve.cluster import require_ray

REPORT_PERIOD_S = 0.2
STALE_AFTER_S = 2.0  # a replica silent this long is gone (killed, scaled down): its last report no longer counts


class DrainControl:
    """The flag the replicas poll and the counts they report (a Ray actor, no CPU)."""

    def __init__(self) -> None:
        self.draining = False
        self.reports: dict[str, tuple[float, int, bool]] = {}  # replica -> (when, requests held, draining)

    def start(self) -> None:
        self.draining = True

    def poll(self, replica: str, held: int, draining: bool) -> bool:
        """A replica's report; answers whether to drain."""
        self.reports[replica] = (time.monotonic(), held, draining)
        return self.draining

    def drained(self) -> bool:
        """Every replica heard from lately drains and holds no request."""
        recent = [report for report in self.reports.values() if time.monotonic() - report[0] < STALE_AFTER_S]
        return self.draining and all(draining and held == 0 for _, held, draining in recent)


def start_control():
    """A new DrainControl actor owned by this driver (it ends with the driver)."""
    ray = require_ray()
    return ray.remote(num_cpus=0)(DrainControl).remote()


def drain(control, timeout_s: float) -> bool:
    """Tell the replicas to drain and wait until they have (True) or ``timeout_s`` passed (False)."""
    ray = require_ray()
    ray.get(control.start.remote())
    deadline = time.monotonic() + timeout_s
    time.sleep(2 * REPORT_PERIOD_S)  # every polling replica has seen the flag at least once
    while not ray.get(control.drained.remote()):
        if time.monotonic() > deadline:
            return False
        time.sleep(REPORT_PERIOD_S)
    return True
