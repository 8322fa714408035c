"""``predict --ray``: segment image files with Ray Data, resumably.

Inputs are what ``collect_inputs`` takes (image files, folders of images, ``.txt`` lists of paths); videos are
refused (run them without --ray), and so are two inputs with one stem, whose outputs would overwrite each
other. Outputs are those of the plain path, ``OUT/<stem>.png`` and with ``overlay`` ``OUT/<stem>_overlay.jpg``,
byte for byte: each actor runs ``Segmenter.predict`` and the shared encoders, and writes each file atomically
itself (the driver only counts). Ray tasks read and decode the files; ``concurrency`` actors each load the model
once and segment ``batch`` images per call.

Resumable: the folder's run file (``segdeploy.serve.runfile``) must match the artifact and options; then an
image whose outputs all exist (written since the run file) is skipped. A killed run loses nothing it wrote.

CPU reservations: the actors together reserve at most ``ACTOR_SHARE`` of the cluster's CPUs (each at most 1)
and decode tasks ``DECODE_CPUS`` each, so on 2 cores any number of actors leaves room for decoding; as many
decode tasks run at once as the CPUs the actors leave (at least 1).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from segdeploy.data.images import read_image
from segdeploy.errors import BadInputError, SegdeployError, check_range, convert_choices
from segdeploy.fileio import atomic_write_bytes
from segdeploy.limits import MAX_THREADS
from segdeploy.runtime.artifacts import BackendKind, Device, backend_for
from segdeploy.runtime.encoding import MaskFormat, encode_image, encode_mask
from segdeploy.serve.runfile import outputs_done, prepare_folder, run_record
from segdeploy.sizes import format_hw, parse_hw

ACTOR_SHARE = 0.75  # of the cluster's CPUs, for all actors together
DECODE_CPUS = 0.1  # per decode task
MAX_CONCURRENCY = 1024
MAX_BATCH = 4096


@dataclass(frozen=True)
class RayPredictConfig:
    """Outputs (as ``PredictConfig``), the Segmenter's options and how to run on Ray (``address``: None starts a
    local instance, "auto" joins this machine's cluster; ignored where this process already runs Ray)."""

    overlay: bool = False
    alpha: float = 0.5
    mask_format: MaskFormat = MaskFormat.PALETTE
    backend: BackendKind = BackendKind.AUTO
    device: Device = Device.AUTO
    threads: int | None = None  # per actor; None: the runtime's default
    tile: str | None = None  # HxW
    overlap: float = 0.25
    input_size: str | None = None  # HxW
    address: str | None = None
    concurrency: int = 1  # actors
    batch: int = 8  # images per actor call
    overwrite: bool = False  # replace outputs made with another model or other options

    def __post_init__(self) -> None:
        convert_choices(self, {"mask_format": (MaskFormat, "--mask-format"), "backend": (BackendKind, "--backend"),
                               "device": (Device, "--device")})
        check_range(self.alpha, "--alpha", low=0.0, high=1.0)
        if not 0 <= self.overlap < 1:
            raise BadInputError(f"--overlap must be in [0, 1), got {self.overlap}")
        check_range(self.concurrency, "--concurrency", low=1, high=MAX_CONCURRENCY)
        check_range(self.batch, "--batch", low=1, high=MAX_BATCH)
        if self.threads is not None:
            check_range(self.threads, "--threads", low=1, high=MAX_THREADS)
        for field in ("tile", "input_size"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field, format_hw(parse_hw(getattr(self, field))))

    def outputs(self, stem: str) -> tuple[str, ...]:
        """The file names one image gives."""
        return output_names(stem, self.overlay)

    def recorded(self, artifact: Path) -> dict:
        """The options that change output bytes, for the run file."""
        options = {"mask_format": self.mask_format.value, "overlay": self.overlay,
                   "backend": backend_for(artifact, self.backend).value, "device": self.device.value,
                   "tile": self.tile, "input_size": self.input_size}
        return options | ({"alpha": self.alpha} if self.overlay else {}) | ({"overlap": self.overlap} if self.tile
                                                                            else {})

    def segmenter_options(self) -> dict:
        return {"backend": self.backend.value, "device": self.device.value, "tile": self.tile,
                "overlap": self.overlap, "input_size": self.input_size, "threads": self.threads}


@dataclass(frozen=True)
class RayPredictReport:
    images: int  # inputs
    skipped: int  # already done by an earlier run
    written: int  # files written by this run
    seconds: float

    @property
    def images_per_second(self) -> float:
        return (self.images - self.skipped) / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return asdict(self) | {"images_per_second": self.images_per_second}


def predict_files_ray(artifact: str | Path, inputs: list[str | Path], out: str | Path,
                      config: RayPredictConfig = RayPredictConfig(),
                      on_progress: Callable[[int, int], None] | None = None) -> RayPredictReport:
    """Segment the images in ``inputs`` on Ray; write what is not yet done under ``out``.

    ``on_progress(done, total)`` counts the images segmented by this run (``total``: those not skipped).
    """
    started = time.perf_counter()
    artifact, out = Path(artifact), Path(out)
    images = image_inputs(inputs)
    prepare_folder(out, run_record(artifact, config.recorded(artifact)),  # overlays too: none may stay stale
                   [name for path in images for name in output_names(path.stem, overlay=True)],
                   config.overwrite)
    finished = outputs_done(out, [config.outputs(path.stem) for path in images])
    pending = [path for path, complete in zip(images, finished) if not complete]
    if on_progress:
        on_progress(0, len(pending))
    if pending:
        _segment_on_ray(artifact, pending, out, config, on_progress)
    return RayPredictReport(images=len(images), skipped=len(images) - len(pending),
                            written=len(pending) * len(config.outputs("")), seconds=time.perf_counter() - started)


def output_names(stem: str, overlay: bool) -> tuple[str, ...]:
    """An image's output file names, as the plain path names them."""
    return (f"{stem}.png", f"{stem}_overlay.jpg") if overlay else (f"{stem}.png",)


def image_inputs(inputs: list[str | Path]) -> list[Path]:
    """The image files ``inputs`` name; BadInputError for videos and for two images with one stem."""
    from segdeploy.runtime.predict import collect_inputs

    images, videos = collect_inputs(inputs)
    if videos:
        raise BadInputError(f"{videos[0]} is a video: --ray takes images only; run videos without --ray")
    seen: dict[str, Path] = {}
    for path in images:
        if (other := seen.setdefault(path.stem, path)) is not path:
            raise BadInputError(f"{other} and {path} share the stem {path.stem!r}, so their outputs would overwrite "
                                "each other; rename one or run them into separate folders")
    return images


def actor_cpus(cluster_cpus: float, concurrency: int) -> float:
    """CPUs each actor reserves: an equal part of ``ACTOR_SHARE`` of the cluster's, at most 1."""
    return round(min(1.0, ACTOR_SHARE * cluster_cpus / concurrency), 4)


def decode_tasks(cluster_cpus: float) -> int:
    """Decode tasks run at once: the CPUs the actors leave, at least 1 (more would only start idle workers)."""
    return max(1, math.ceil(cluster_cpus * (1 - ACTOR_SHARE)))


def _segment_on_ray(artifact: Path, images: list[Path], out: Path, config: RayPredictConfig,
                    on_progress: Callable[[int, int], None] | None) -> None:
    """Decode tasks feed ``config.concurrency`` segmenting actors; progress as their batches finish."""
    with _ray(config.address) as ray:
        # Absolute paths: Ray's workers do not run in this process's folder.
        items = [{"path": str(path.absolute()), "stem": path.stem} for path in images]
        cpus = ray.cluster_resources().get("CPU", 1.0)
        dataset = (ray.data.from_items(items, override_num_blocks=math.ceil(len(items) / config.batch))
                   .map(_decode, num_cpus=DECODE_CPUS, compute=ray.data.TaskPoolStrategy(size=decode_tasks(cpus)))
                   .map_batches(_SegmentWriter, batch_size=config.batch, num_cpus=actor_cpus(cpus, config.concurrency),
                                compute=ray.data.ActorPoolStrategy(size=config.concurrency),
                                fn_constructor_kwargs={"artifact": str(artifact.absolute()), "out": str(out.absolute()),
                                                      "config": config}))
        done = 0
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                done += len(batch["stem"])
                if on_progress:
                    on_progress(done, len(images))
        except Exception as exc:
            if (cause := _segdeploy_cause(exc)) is None:
                raise
            raise cause from exc


@contextlib.contextmanager
def _ray(address: str | None) -> Iterator:
    """The ``ray`` module (with ``ray.data``), Ray running and Ray Data's console output (progress, tracebacks) off
    for the block: this process's Ray where it already runs one, else ``ray_session(address)``."""
    from segdeploy.serve.cluster import ray_session, require_ray

    require_ray()  # or MissingDependencyError naming the extra
    import ray
    import ray.data

    consoles = [handler for handler in logging.getLogger("ray.data").handlers
                if isinstance(handler, logging.StreamHandler)]  # its log file keeps every record
    context = ray.data.DataContext.get_current()
    with contextlib.ExitStack() as stack:
        if not ray.is_initialized():
            stack.enter_context(ray_session(address=address))
        for handler in consoles:
            stack.callback(handler.setLevel, handler.level)
            handler.setLevel(logging.CRITICAL)
        # A task's SegdeployError reaches the driver as the cause of a RayTaskError, not lost in Ray Data's wrapper.
        stack.callback(setattr, context, "raise_original_map_exception", context.raise_original_map_exception)
        context.raise_original_map_exception = True
        yield ray


def _segdeploy_cause(exc: BaseException | None) -> SegdeployError | None:
    """The SegdeployError a Ray task or actor raised (its first line: the message), found in the exceptions Ray
    wraps it in (None if none). Ray's wrappers (``RayTaskError(BadInputError)``) subclass it too, but their
    message is a traceback."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, SegdeployError) and type(exc).__module__.startswith("segdeploy"):
            exc.args = (str(exc).splitlines()[0],)  # Ray Data appends its retry advice on lines of its own
            return exc
        links = (getattr(exc, "cause", None), exc.__cause__, exc.__context__)
        exc = next((link for link in links if isinstance(link, BaseException)), None)
    return None


def _decode(row: dict) -> dict:
    """A Ray task: the image file ``row["path"]`` read and decoded (HxWx3 uint8 BGR)."""
    return {"stem": row["stem"], "image": read_image(row["path"])}


class _SegmentWriter:
    """A Ray actor: one Segmenter; segments a batch of decoded images and writes each one's outputs."""

    def __init__(self, artifact: str, out: str, config: RayPredictConfig) -> None:
        from segdeploy.runtime.segmenter import Segmenter

        self.out, self.config = Path(out), config
        try:
            self.segmenter, self.error = Segmenter(artifact, **config.segmenter_options()), None
        except SegdeployError as error:  # raised with the first batch: from __init__ Ray passes on only its text
            self.error = error

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.error is not None:
            raise self.error
        for stem, image in zip(batch["stem"], batch["image"]):
            mask = self.segmenter.predict(image)
            palette = self.segmenter.meta.palette
            atomic_write_bytes(self.out / f"{stem}.png", encode_mask(mask, palette, self.config.mask_format))
            if self.config.overlay:
                overlay = self.segmenter.overlay(image, mask, self.config.alpha)
                atomic_write_bytes(self.out / f"{stem}_overlay.jpg", encode_image(overlay, ".jpg"))
        return {"stem": batch["stem"]}
