"""The backend contract every runtime implements.

Constructors are cheap and have no side effects; resources (sessions, compiled models,
device buffers) are acquired by ``activate()`` / ``with backend:`` and released by
``close()``. ``infer(batch)`` takes the graph's input (NCHW float32, or uint8 when the
graph fuses normalisation) and returns its output (logits or class map).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from segdeploy.errors import SegdeployError


class Backend(ABC):
    name: str = "backend"

    def __init__(self) -> None:
        self._active = False

    @property
    def is_active(self) -> bool:
        return self._active

    def activate(self) -> Backend:
        """Acquire resources; calling it on an active backend does nothing."""
        if not self._active:
            self._activate()
            self._active = True
        return self

    def close(self) -> None:
        """Release resources; the backend can be activated again later."""
        if self._active:
            self._close()
            self._active = False

    def __enter__(self) -> Backend:
        return self.activate()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch; the backend must be active."""
        self._require_active()
        return self._infer(batch)

    def _require_active(self) -> None:
        if not self._active:
            raise SegdeployError(f"{self.name} backend is not active; use 'with backend:' first")

    @abstractmethod
    def _activate(self) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...
