"""Per-shape staging slots, allocated once and reused: the bookkeeping of a device runtime's buffers.

A runtime that copies through pinned host memory (or captures a CUDA graph) needs buffers of the
batch's exact shape. Allocating them per call costs more than the copy (``cudaHostAlloc`` pins
pages), so a slot is made on the first batch of a shape and reused for every later one. At most
``capacity`` shapes are kept (tiling and variable image sizes must not grow memory without bound);
making one more releases the least recently used.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Slot = TypeVar("Slot")
Shape = tuple[int, ...]


class StagingCache(Generic[Slot]):
    """Slots by shape: ``make(shape)`` on a miss, ``release(slot)`` on eviction and on ``clear``."""

    def __init__(self, make: Callable[[Shape], Slot], release: Callable[[Slot], None], capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self._make, self._release, self._capacity = make, release, capacity
        self._slots: OrderedDict[Shape, Slot] = OrderedDict()
        self.made = 0  # slots made since construction: flat after warm-up means buffers are reused

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, shape: Shape) -> Slot:
        """The slot for ``shape``, made (and the oldest released beyond capacity) if there is none."""
        shape = tuple(int(d) for d in shape)
        if shape in self._slots:
            self._slots.move_to_end(shape)
            return self._slots[shape]
        while len(self._slots) >= self._capacity:
            _, oldest = self._slots.popitem(last=False)
            self._release(oldest)
        slot = self._make(shape)
        self._slots[shape] = slot
        self.made += 1
        return slot

    def clear(self) -> None:
        """Release every slot (each once, also if a release fails part way through the others)."""
        slots, self._slots = list(self._slots.values()), OrderedDict()
        failure: BaseException | None = None
        for slot in slots:
            try:
                self._release(slot)
            except BaseException as exc:  # release the rest, then report the first
                failure = failure or exc
        if failure is not None:
            raise failure
