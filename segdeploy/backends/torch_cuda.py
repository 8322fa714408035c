"""The torch backend on CUDA: pinned staging per input shape, copies on the runner's own stream,
optional CUDA graph replay, and the phase timings the TensorRT backend reports (``gpu`` tests).

Per call: numpy batch -> the shape's pinned host tensor (one CPU copy) -> async H2D into the shape's
device input -> forward (autocast, ``channels_last``) or the replay of the graph captured for that
shape -> float32 contiguous logits -> async D2H into the shape's pinned output -> one synchronise of
the stream. Four CUDA events on the stream give ``h2d``, ``compute`` and ``d2h`` in ms, as
trtexec and the TensorRT backend report them. The CPU -> pinned copy happens before the first
event: it is host time, counted in the wall time bench reports but in no device phase.

Pinned memory comes from torch's pinned allocator (``pin_memory=True``, i.e. ``cudaHostAlloc``):
page-locked as the TensorRT backend's buffers from ``segdeploy.cuda``, without a second CUDA
runtime binding loaded beside torch's own. Buffers are made once per shape (``StagingCache``,
at most ``MAX_SHAPES`` shapes); ``pinned_buffers_made`` counts them, so tests can prove reuse.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from segdeploy.backends.base import DEVICE_PHASES
from segdeploy.backends.staging import StagingCache
from segdeploy.errors import CheckFailedError

MAX_SHAPES = 4  # shapes with buffers (and graphs) kept; tiles and mixed image sizes stay bounded
# Eager runs on the runner's stream before a capture, as torch's CUDA-graph notes ask: cuDNN and
# cuBLAS choose algorithms and allocate workspaces then, outside the graph.
GRAPH_WARMUP = 3


@dataclass
class _Slot:
    """What one input shape owns: pinned input, device input, pinned output, and its graph if any."""

    host_in: torch.Tensor
    device_in: torch.Tensor
    host_out: torch.Tensor | None = None  # made on the first call, when the output's shape is known
    graph: torch.cuda.CUDAGraph | None = None
    graph_out: torch.Tensor | None = None  # the captured graph writes its logits here on every replay
    host_in_array: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.host_in_array = self.host_in.numpy()  # shares the pinned memory


class CudaRunner:
    """Runs an eval-mode model that is already on the GPU; ``close()`` drops every buffer and graph."""

    def __init__(self, model: torch.nn.Module, autocast: torch.dtype | None, channels_last: bool,
                 cuda_graph: bool) -> None:
        self._model, self._autocast, self._channels_last, self._cuda_graph = model, autocast, channels_last, cuda_graph
        self._stream = torch.cuda.Stream()
        self._events = [torch.cuda.Event(enable_timing=True) for _ in range(len(DEVICE_PHASES) + 1)]
        self._pinned = _PinnedAllocator()
        # Neither function refers to this runner: no reference cycle keeps the model alive after close().
        self._slots: StagingCache[_Slot] = StagingCache(self._pinned.slot, _release_slot, MAX_SHAPES)
        self.graphs_captured = 0
        self.phases: dict[str, float] = {}

    @property
    def pinned_buffers_made(self) -> int:
        """Pinned host buffers allocated so far: flat after warm-up means every call reuses its shape's."""
        return self._pinned.made

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Logits (float32, NCHW) for one float32 NCHW batch; ``phases`` holds its device timings."""
        slot = self._slots.get(batch.shape)
        np.copyto(slot.host_in_array, batch)  # safe: the previous call synchronised its copies
        start, copied, computed, done = self._events
        # Side streams do not wait for the default stream by themselves: the weights (and channels_last
        # copies of them) were queued there by model.to(), the slot's device tensors allocated there.
        self._stream.wait_stream(torch.cuda.current_stream())
        with torch.no_grad(), torch.cuda.stream(self._stream):
            start.record()
            slot.device_in.copy_(slot.host_in, non_blocking=True)
            copied.record()
            logits = self._compute(slot)
            computed.record()
            host_out = self._host_out(slot, logits)
            host_out.copy_(logits, non_blocking=True)
            done.record()
        self._stream.synchronize()
        self.phases = {phase: begin.elapsed_time(end) for phase, begin, end in zip(DEVICE_PHASES, self._events,
                                                                                   self._events[1:])}
        return host_out.numpy().copy()  # the pinned buffer is overwritten by the next call

    def close(self) -> None:
        """Wait for the stream, then drop every slot (buffers go back to torch's caching allocators)."""
        self._stream.synchronize()
        self._slots.clear()

    def _compute(self, slot: _Slot) -> torch.Tensor:
        if not self._cuda_graph:
            return self._forward(slot.device_in)
        if slot.graph is None or slot.graph_out is None:
            slot.graph, slot.graph_out = self._capture(slot.device_in)
        slot.graph.replay()
        return slot.graph_out

    def _forward(self, device_in: torch.Tensor) -> torch.Tensor:
        """Float32 contiguous logits; the layout change and the cast run on the device, inside the graph."""
        inputs = device_in.contiguous(memory_format=torch.channels_last) if self._channels_last else device_in
        # cache_enabled=False: autocast's weight-cast cache must not outlive a graph capture (torch's notes).
        with torch.autocast("cuda", self._autocast or torch.float16, enabled=self._autocast is not None,
                            cache_enabled=False):
            logits = self._model(inputs)
        return logits.float().contiguous()

    def _capture(self, device_in: torch.Tensor) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        """A graph of one forward from ``device_in``, and the tensor each replay writes its logits to."""
        for _ in range(GRAPH_WARMUP):
            self._forward(device_in)
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph, stream=self._stream):
                logits = self._forward(device_in)
        except RuntimeError as exc:  # a host sync or a CPU tensor in forward(): not capturable
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CheckFailedError(f"this model cannot be captured in a CUDA graph ({reason}); run it without "
                                   "cuda_graph") from exc
        self.graphs_captured += 1
        return graph, logits

    def _host_out(self, slot: _Slot, logits: torch.Tensor) -> torch.Tensor:
        if slot.host_out is None or slot.host_out.shape != logits.shape:
            slot.host_out = self._pinned.tensor(tuple(logits.shape))
        return slot.host_out


class _PinnedAllocator:
    """Pinned float32 tensors from torch's pinned allocator, counted."""

    def __init__(self) -> None:
        self.made = 0

    def tensor(self, shape: tuple[int, ...]) -> torch.Tensor:
        self.made += 1
        return torch.empty(shape, dtype=torch.float32, pin_memory=True)

    def slot(self, shape: tuple[int, ...]) -> _Slot:
        """A new slot for ``shape``: pinned input and device input (the output comes with the first call)."""
        return _Slot(self.tensor(shape), torch.empty(shape, dtype=torch.float32, device="cuda"))


def _release_slot(slot: _Slot) -> None:
    """Drop the slot's references; its graph's private memory pool goes with the graph."""
    slot.graph = slot.graph_out = slot.host_out = None
