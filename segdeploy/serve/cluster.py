"""Joining or starting the Ray instance that serving and batch inference run on.

``address=None`` starts a new local instance (never a stale one found under /tmp/ray, which plain
``ray.init()`` would join); ``"auto"`` joins the cluster this machine belongs to (``ray start --head``);
any other value is a cluster address. Leaving stops what was started here and leaves a joined cluster
running.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

from segdeploy.errors import MissingDependencyError, UsageError, library_reason, require

# Ray's own chatter (usage stats prompt, dashboard) is off: segdeploy prints what matters in one line.
_QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class RaySession:
    """What a started or joined Ray instance is: its address, its session folder and whether it was started
    here (then it is shut down on leaving)."""

    address: str
    session_dir: str
    started_here: bool
    cpus: float


def require_ray():
    """The ``ray`` module, or MissingDependencyError naming the ``serve`` extra."""
    return require("ray", "serve")


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None,
                metrics_port: int | None = None) -> Iterator[RaySession]:
    """Ray, started (``address=None``: a new local instance with ``num_cpus``, its Prometheus metrics on
    ``metrics_port``) or joined, for the block; a started instance is shut down on leaving."""
    ray = require_ray()
    if address not in (None, "auto"):
        _check_reachable(address)
    for key, value in _QUIET_ENV.items():
        os.environ.setdefault(key, value)
    # Ray 2.60's own gRPC ports listen on every interface even for a local instance (it rewrites a loopback
    # node address to the machine's IP), guarded by its token authentication; segdeploy's HTTP binds --host.
    options = ({"address": "local", "num_cpus": num_cpus, "_metrics_export_port": metrics_port}
               if address is None else {"address": address})
    try:
        context = ray.init(include_dashboard=False, log_to_driver=False, **options)
    except ConnectionError as exc:
        raise MissingDependencyError(
            f"cannot join the Ray cluster at {address} ({library_reason(exc)}): start one with 'ray start --head', "
            "or for a cluster with token authentication set RAY_AUTH_MODE=token (its token in ~/.ray/auth_token "
            "or RAY_AUTH_TOKEN), or leave out --address to start a local one") from exc
    except ValueError as exc:  # a malformed address
        raise UsageError(f"--address {address!r}: {library_reason(exc)}") from exc
    session = RaySession(address=context.address_info["gcs_address"], session_dir=context.address_info["session_dir"],
                         started_here=address is None, cpus=ray.cluster_resources().get("CPU", 0.0))
    try:
        yield session
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """An address nothing answers on would have Ray retry for minutes: a TCP connect says so at once."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise UsageError(f"--address takes HOST:PORT (the head's GCS, e.g. 10.0.0.5:6379) or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise MissingDependencyError(f"nothing answers at {address} ({exc.strerror or exc}): start the cluster "
                                     "with 'ray start --head', or leave out --address to start a local one") from exc


def leftover_processes(session_dir: str, wait_s: float = 10.0) -> list[str]:
    """Command lines of processes still running for the Ray session in ``session_dir`` after ``wait_s``
    seconds (empty when all have exited): Ray's own processes all name their session folder."""
    import psutil

    deadline = time.monotonic() + wait_s
    while True:
        alive = []
        for process in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                command = " ".join(process.info["cmdline"] or ())
                if session_dir in command:
                    alive.append(command[:200])
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)
