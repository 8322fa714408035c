"""``ServeConfig``: everything ``segdeploy serve`` needs, checked when it is made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from segdeploy.errors import BadInputError, check_range, convert_choices
from segdeploy.limits import MAX_THREADS
from segdeploy.runtime.artifacts import BackendKind, Device

MAX_REPLICAS = 1024
MAX_BATCH = 256
MIN_ONGOING = 16


@dataclass(frozen=True)
class ServeConfig:
    """One served artifact. ``autoscale`` (min, max) replaces the fixed ``replicas``; ``max_batch`` 1 turns
    batching off. ``replica_cpus`` is each replica's Ray CPU reservation (a scheduling share, not a limit;
    default: ``threads``, else 1). ``address`` None starts a local Ray instance. ``api_key`` None serves
    without a key (never printed: it is kept out of ``repr``)."""

    artifact: Path
    backend: BackendKind = BackendKind.AUTO
    device: Device = Device.AUTO
    threads: int | None = None
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    max_batch: int = 8
    batch_wait_ms: float = 5.0
    replica_cpus: float | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    address: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_image_bytes: int = 20_000_000
    max_pixels: int = 40_000_000
    max_queued: int = 64  # requests waiting for a replica beyond the ones running; then 503 + Retry-After
    retry_after_s: int = 1
    metrics_port: int | None = None  # Ray's Prometheus endpoint on a local instance (None: Ray picks one)
    scale_up_s: float = 2.0  # autoscaling: how long load must stay above target before a replica is added
    scale_down_s: float = 30.0  # ... and below it before one is removed (each start reloads the model)

    def __post_init__(self) -> None:
        object.__setattr__(self, "artifact", Path(self.artifact))
        convert_choices(self, {"backend": (BackendKind, "--backend"), "device": (Device, "--device")})
        if self.threads is not None:
            check_range(self.threads, "--threads", 1, MAX_THREADS)
        check_range(self.replicas, "--replicas", 1, MAX_REPLICAS)
        if self.autoscale is not None:
            low, high = self.autoscale
            if not 0 <= low <= high or high < 1 or high > MAX_REPLICAS:
                raise BadInputError(f"--autoscale MIN:MAX needs 0 <= MIN <= MAX, 1 <= MAX <= {MAX_REPLICAS}, "
                                    f"got {low}:{high}")
        check_range(self.max_batch, "--max-batch", 1, MAX_BATCH)
        check_range(self.batch_wait_ms, "--batch-wait-ms", 0, 10_000)
        if self.replica_cpus is not None:
            check_range(self.replica_cpus, "--replica-cpus", 0.01, 1024)
        check_range(self.port, "--port", 1, 65535)
        if self.metrics_port is not None:
            check_range(self.metrics_port, "--metrics-port", 1, 65535)
        check_range(self.max_image_bytes, "--max-image-bytes", 1)
        check_range(self.max_pixels, "--max-pixels", 1)
        check_range(self.max_queued, "--max-queued", 1)
        check_range(self.scale_up_s, "--scale-up-s", 0, 3600)
        check_range(self.scale_down_s, "--scale-down-s", 0, 3600)
        if self.api_key is not None and not self.api_key.strip():
            raise BadInputError("the API key is empty: set SEGDEPLOY_API_KEY or --api-key-file to a non-empty key")

    @property
    def cpus_per_replica(self) -> float:
        return self.replica_cpus if self.replica_cpus is not None else float(self.threads or 1)

    @property
    def replica_range(self) -> tuple[int, int]:
        """(fewest, most) replicas this config can run."""
        return self.autoscale if self.autoscale is not None else (self.replicas, self.replicas)

    @property
    def max_ongoing(self) -> int:
        """Requests one replica holds at once: two batches' worth, so the next batch fills while one runs (Ray
        Serve hands a replica no more than this, so a smaller value would cap every batch below ``max_batch``),
        and at least MIN_ONGOING: requests beyond it wait in Ray's proxy, whose router retries a full replica with
        backoff (measured: without batching, 16 clients got 5 images/s where 4 got 8)."""
        return max(2 * self.max_batch, MIN_ONGOING)


def parse_autoscale(text: str) -> tuple[int, int]:
    """``"1:4"`` -> (1, 4); ServeConfig checks the values."""
    low, sep, high = text.partition(":")
    try:
        if sep:
            return int(low), int(high)
    except ValueError:
        pass
    raise BadInputError(f"--autoscale takes MIN:MAX replicas, e.g. 1:4, got {text[:40]!r}")


def read_api_key(key_file: Path | None, environ: dict[str, str]) -> str | None:
    """The API key from ``--api-key-file`` (first line) or else ``SEGDEPLOY_API_KEY``; None when neither is
    set. Never from the command line, where ``ps`` shows it to every user."""
    if key_file is not None:
        try:
            text = key_file.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"--api-key-file {key_file}: cannot read it ({exc.__class__.__name__})") from exc
        return text.splitlines()[0].strip() if text else ""
    return environ.get("SEGDEPLOY_API_KEY")
