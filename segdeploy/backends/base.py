"""The backend contract every runtime implements (Polygraphy's ``BaseRunner`` is the model).

Constructors are cheap and have no side effects; resources (sessions, compiled models,
device buffers) are acquired by ``activate()`` / ``with backend:`` and released by
``close()``, after which the backend can be activated again. ``infer(batch)`` takes the
graph's input (NCHW float32, or uint8 when the graph fuses normalisation) and returns its
output (logits or class map).

The base class owns what every backend shares: it checks each batch against the input
spec the runtime reported at activation (one error wording for every backend) and times
each call. Subclasses implement ``_activate`` (returning that spec), ``_infer`` and
``_close``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from segdeploy.errors import BadInputError, SegdeployError

# What a device runtime times with CUDA events between consecutive records (4 events, 3 phases), as
# trtexec reports them: every GPU backend's ``phase_timings_ms`` has these keys.
DEVICE_PHASES = ("h2d", "compute", "d2h")


@dataclass(frozen=True)
class InputSpec:
    """The one input a backend takes, as its runtime reports it after activation.

    ``shape`` has None for each dynamic dimension (and is None when even the rank is
    unknown). ``min_shape``/``max_shape`` bound every dimension where the runtime has a
    range (a TensorRT optimisation profile); None elsewhere.
    """

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...] | None
    min_shape: tuple[int, ...] | None = None
    max_shape: tuple[int, ...] | None = None

    def describe(self) -> str:
        """``float32 ?x3x64x80``, or with a range ``float32 1x3x32x32 to 2x3x128x160``."""
        if self.min_shape is not None and self.max_shape is not None:
            return f"{self.dtype} {_fmt(self.min_shape)} to {_fmt(self.max_shape)}"
        return f"{self.dtype} {_fmt(self.shape) if self.shape is not None else 'of any shape'}"

    def mismatch(self, batch: object) -> str | None:
        """Why ``batch`` cannot be this input (rank, dtype, static dims, range), or None if it can."""
        if not isinstance(batch, np.ndarray):
            return "not a numpy array"
        if self.shape is not None and batch.ndim != len(self.shape):
            return f"rank {batch.ndim}, not {len(self.shape)}"
        if batch.dtype != self.dtype:
            return f"dtype {batch.dtype}, not {self.dtype}"
        for axis, (want, got) in enumerate(zip(self.shape or (), batch.shape)):
            if want is not None and got != want:
                return f"dimension {axis} is {got}, not {want} (static in this artifact)"
        if self.min_shape is not None and self.max_shape is not None and not all(
                low <= got <= high for low, got, high in zip(self.min_shape, batch.shape, self.max_shape)):
            return "outside the engine's optimisation profile (rebuild with wider --min-shape/--max-shape)"
        return None


def _fmt(shape: tuple[int | None, ...]) -> str:
    return "x".join("?" if d is None else str(d) for d in shape)


class Backend(ABC):
    name: str = "backend"

    def __init__(self) -> None:
        self._active = False
        self._input_spec: InputSpec | None = None
        self._last_inference_ms: float | None = None
        self._threads_used: int | None = None

    @property
    def is_active(self) -> bool:
        return self._active

    @property
    def input_spec(self) -> InputSpec:
        """The input's name, dtype and shape as the runtime reported them; the backend must be active."""
        self._require_active()
        return self._input_spec

    @property
    def last_inference_ms(self) -> float | None:
        """Wall time of the last successful ``infer`` in ms (validation included); None before the first."""
        return self._last_inference_ms

    @property
    def phase_timings_ms(self) -> dict[str, float]:
        """Phases of the last ``infer`` in ms, for backends that time them on the device (TensorRT:
        ``h2d``, ``compute``, ``d2h`` from CUDA events); empty for the others."""
        return {}

    @property
    def threads(self) -> int | None:
        """CPU threads the runtime infers with since the last activation, as it reports them (the value
        asked for, or the runtime's own default); None for a GPU runtime. Kept after ``close()`` for reports."""
        return self._threads_used

    @property
    def execution_precision(self) -> str | None:
        """The precision the runtime chose to execute in at the last activation (OpenVINO: ``f32``,
        ``bf16``, ``f16``), where it chooses and reports one; None otherwise."""
        return None

    def activate(self) -> Backend:
        """Acquire resources; calling it on an active backend does nothing.

        A failed activation releases what it had acquired (``_close`` tolerates partial state).
        """
        if not self._active:
            try:
                self._input_spec = self._activate()
            except BaseException:
                self._close()
                raise
            self._active = True
        return self

    def close(self) -> None:
        """Release resources; the backend can be activated again later."""
        if self._active:
            self._close()
            self._input_spec = None
            self._active = False

    def __enter__(self) -> Backend:
        return self.activate()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; the backend must be active and the batch must fit ``input_spec``
        (BadInputError naming what the input takes otherwise)."""
        self._require_active()
        started = time.perf_counter()
        self._check_input(batch)
        output = self._infer(batch)
        self._last_inference_ms = (time.perf_counter() - started) * 1000
        return output

    def _require_active(self) -> None:
        if not self._active:
            raise SegdeployError(f"{self.name} backend is not active; use 'with backend:' first")

    def _check_input(self, batch: np.ndarray) -> None:
        """BadInputError, in the one wording every backend shares, unless ``batch`` fits the input spec."""
        problem = self._input_spec.mismatch(batch)
        if problem:
            got = f"{batch.dtype} {_fmt(batch.shape)}" if isinstance(batch, np.ndarray) else f"a {type(batch).__name__}"
            raise BadInputError(f"input {self._input_spec.name!r} takes {self._input_spec.describe()}, "
                                f"got {got}: {problem}")

    @abstractmethod
    def _activate(self) -> InputSpec:
        """Acquire every resource and return the input spec read from the runtime."""

    @abstractmethod
    def _close(self) -> None:
        """Release every resource; also called after a failed ``_activate``, on partial state."""

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray:
        """Run a batch that already fits the input spec."""
