"""``serve_artifact``: start (or join) Ray, deploy the artifact behind Ray Serve's HTTP proxy, serve until
told to stop, then drain and shut down.

Stopping: the replicas drain (``serve.drain``: new requests get 503 + Retry-After, those accepted are
answered, up to ``DRAIN_TIMEOUT_S``), then the application is deleted, then Serve and Ray are shut down
when they were started here. On a joined cluster only this application goes.
"""

from __future__ import annotations

import signal
import socket
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from segdeploy.errors import BadInputError, MissingDependencyError, SegdeployWarning, library_reason
from segdeploy.fileio import require_file, sha256_file
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.serve.cluster import RaySession, ray_session
from segdeploy.serve.config import ServeConfig
from segdeploy.serve.drain import drain, start_control

APP_NAME = "segdeploy"
DRAIN_TIMEOUT_S = 30.0
HEALTH_PERIOD_S = 2.0


@dataclass(frozen=True)
class ServerInfo:
    """Where a started server answers."""

    url: str
    metrics_url: str | None
    ray_address: str
    replicas: tuple[int, int]


def serve_artifact(config: ServeConfig, stop: threading.Event,
                   on_ready: Callable[[ServerInfo], None] = lambda info: None, stop_on_signals: bool = False
                   ) -> ServerInfo:
    """Serve ``config.artifact`` until ``stop`` is set (``stop_on_signals``: also on SIGINT/SIGTERM, from the
    main thread); ``on_ready`` is called once the first replica has loaded the model and answered its
    warm-up. Returns where it served."""
    # The replicas' Segmenter made here first (cheap: no model loaded): a damaged or foreign file, a backend that
    # cannot run it or is not installed is one line before Ray starts, not a replica failing in a loop.
    Segmenter(require_file(config.artifact, "artifact"), backend=config.backend, device=config.device,
              threads=config.threads)
    if config.address is None:
        _check_port_free(config.host, config.port)
    with ray_session(config.address, metrics_port=config.metrics_port) as session:
        if stop_on_signals:  # after ray.init, whose C++ core installs a SIGTERM handler that aborts the process
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
        _check_capacity(config, session)
        control = start_control()
        info = deploy(config, session, control)
        on_ready(info)
        try:
            while not stop.wait(0.5):  # a timed wait: signal handlers run in between
                pass
            if not drain(control, DRAIN_TIMEOUT_S):
                warnings.warn(f"requests were still running {DRAIN_TIMEOUT_S:g} s after the stop: ending them",
                              SegdeployWarning, stacklevel=2)
        finally:
            undeploy(session)
    return info


def deploy(config: ServeConfig, session: RaySession, drain_control=None) -> ServerInfo:
    """Start Serve on ``session`` (if it is not running there) and deploy the artifact; returns once a
    replica is ready. Replicas follow ``drain_control`` (a DrainControl actor) when given."""
    from ray import serve
    from ray.serve.config import BackpressureConfig

    from segdeploy.serve.deployment import SegmentDeployment

    serve.start(http_options={"host": config.host, "port": config.port})
    deployment = SegmentDeployment.options(
        max_ongoing_requests=config.max_ongoing, max_queued_requests=config.max_queued,
        backpressure_config=BackpressureConfig(retry_after_s=config.retry_after_s),
        ray_actor_options={"num_cpus": config.cpus_per_replica, "num_gpus": 1 if config.device == "cuda" else 0},
        graceful_shutdown_timeout_s=DRAIN_TIMEOUT_S, health_check_period_s=HEALTH_PERIOD_S,
        **_scaling(config))
    try:
        serve.run(deployment.bind(config, sha256_file(config.artifact), drain_control), name=APP_NAME,
                  route_prefix="/")
    except RuntimeError as exc:  # Ray's "Deploying application ... failed": a replica's constructor raised
        raise BadInputError(f"the replicas could not load {config.artifact.name} ({library_reason(exc)}); their "
                            f"errors are in {session.session_dir}/logs/serve/") from exc
    http = serve.context._get_global_client().http_config  # what the cluster's proxies really bind
    return ServerInfo(url=f"http://{http.host}:{http.port}", metrics_url=_metrics_url(),
                      ray_address=session.address, replicas=config.replica_range)


def undeploy(session: RaySession) -> None:
    """Remove the application (Ray Serve finishes what its replicas hold); shut Serve down too when this
    process started Ray."""
    from ray import serve

    serve.delete(APP_NAME)
    if session.started_here:
        serve.shutdown()


def _scaling(config: ServeConfig) -> dict:
    if config.autoscale is None:
        return {"num_replicas": config.replicas}
    low, high = config.autoscale
    # target 1 ongoing batch's worth per replica: scale out once a replica holds more than one batch
    return {"autoscaling_config": {"min_replicas": low, "max_replicas": high, "initial_replicas": max(low, 1),
                                   "target_ongoing_requests": config.max_batch, "upscale_delay_s": config.scale_up_s,
                                   "downscale_delay_s": config.scale_down_s, "metrics_interval_s": 1.0,
                                   "look_back_period_s": 2.0}}


def _check_capacity(config: ServeConfig, session: RaySession) -> None:
    """Replicas Ray cannot place would wait for CPUs forever: refuse up front with the numbers."""
    fewest, most = config.replica_range
    need = max(fewest, 1) * config.cpus_per_replica
    if need > session.cpus + 1e-9:
        raise BadInputError(f"{max(fewest, 1)} replica(s) x {config.cpus_per_replica:g} CPU need {need:g} CPUs; "
                            f"this Ray cluster has {session.cpus:g}: lower --replica-cpus (e.g. "
                            f"{session.cpus / max(most, 1):g}) or --replicas")
    if config.device == "cuda":
        from ray import cluster_resources

        if cluster_resources().get("GPU", 0) < max(fewest, 1):
            raise MissingDependencyError(f"--device cuda needs a GPU per replica; this Ray cluster has "
                                         f"{cluster_resources().get('GPU', 0):g}")


def _check_port_free(host: str, port: int) -> None:
    """A proxy that cannot bind would be restarted by Ray forever: say so before starting anything."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise BadInputError(f"cannot listen on {host}:{port} ({exc.strerror}): pick another --port or "
                                "--host") from exc


def _metrics_url() -> str | None:
    """Ray's Prometheus endpoint on this node (Serve's request counts and latencies are there)."""
    import ray

    for node in ray.nodes():
        if node.get("Alive") and node.get("MetricsExportPort"):
            return f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
    return None
