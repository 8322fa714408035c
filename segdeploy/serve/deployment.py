"""The Ray Serve replica: one ``Segmenter`` per replica behind the HTTP API, with dynamic batching.

Requests are parsed, checked and decoded concurrently on the replica's event loop (decoding in a thread);
their images meet in ``@serve.batch``, which hands up to ``max_batch`` of them to
``Segmenter.predict_batch`` in one call (images mapping to the same input size run as one backend batch).
A client's mistake is answered as a 4xx here and never raises out of the replica, so it never counts
against the replica's health.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
from ray import serve
from ray.exceptions import RayActorError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from segdeploy.errors import SegdeployError
from segdeploy.fileio import sha256_file
from segdeploy.runtime.segmenter import Segmenter
from segdeploy.serve.config import ServeConfig
from segdeploy.serve.drain import REPORT_PERIOD_S
from segdeploy.serve.protocol import (
    MEDIA_TYPES,
    HttpError,
    Limits,
    ReplyFormat,
    check_api_key,
    check_body_length,
    check_declared_length,
    decode_request_image,
    image_bytes,
    metadata_payload,
    render,
    reply_format,
)


class SegmentReplica:
    """``GET /healthz``, ``GET /v1/metadata``, ``POST /v1/segment`` for one artifact (see the README's API)."""

    def __init__(self, config: ServeConfig, expected_sha256: str, drain_control=None) -> None:
        sha256 = sha256_file(config.artifact)
        if sha256 != expected_sha256:  # on a cluster each node reads the path itself: it must be the same file
            raise SegdeployError(f"{config.artifact} on this node is not the artifact the server was started "
                                 f"with (sha256 {sha256[:12]} != {expected_sha256[:12]}): give every node the "
                                 "same file")
        self.config = config
        self.limits = Limits(config.max_image_bytes, config.max_pixels)
        self.segmenter = Segmenter(config.artifact, backend=config.backend, device=config.device,
                                   threads=config.threads).__enter__()
        meta = self.segmenter.meta
        self.segmenter.predict(np.zeros((*meta.preprocess.eval_size, 3), np.uint8))  # warm-up before ready
        self.metadata = metadata_payload(meta, config.artifact.name, sha256, self.segmenter.backend_name)
        self._segment_batch.set_max_batch_size(config.max_batch)
        self._segment_batch.set_batch_wait_timeout_s(config.batch_wait_ms / 1000)
        self.batch_sizes: list[int] = []  # sizes of the batches formed, for load tests and benchmarks
        self.handler_seconds: list[float] = []  # each answered segment request, from its start in the replica
        self.drain_control = drain_control
        self.draining = False
        self.held = 0  # segment requests accepted and not yet answered
        self._poller: asyncio.Task | None = None

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except HttpError as error:
            return Response(error.body(), error.status, error.headers, media_type="application/json")

    async def _route(self, request: Request) -> Response:
        path, method = request.url.path.rstrip("/") or "/", request.method
        if path == "/healthz" and method == "GET":
            return JSONResponse({"status": "ready"})
        check_api_key(request.headers, self.config.api_key)
        if path == "/v1/metadata" and method == "GET":
            return JSONResponse(self.metadata)
        if path == "/v1/segment" and method == "POST":
            return await self._segment(request)
        if path in ("/healthz", "/v1/metadata", "/v1/segment"):
            raise HttpError(405, f"{method} is not allowed on {path}")
        raise HttpError(404, f"no such endpoint {path[:80]!r}: POST /v1/segment, GET /v1/metadata, GET /healthz")

    async def _segment(self, request: Request) -> Response:
        self._watch_drain()
        if self.draining:
            raise HttpError(503, "the server is shutting down: retry in a moment (another replica or server)",
                            {"Retry-After": str(self.config.retry_after_s)})
        self.held += 1
        started = time.perf_counter()
        try:
            return await self._answer(request)
        finally:
            self.held -= 1
            self.handler_seconds.append(time.perf_counter() - started)

    async def _answer(self, request: Request) -> Response:
        fmt = reply_format(request.query_params)
        check_declared_length(request.headers, self.limits)
        body = await _read_body(request, self.limits)
        data = image_bytes(body, request.headers.get("content-type", ""))
        image = await asyncio.to_thread(decode_request_image, data, self.limits)
        mask = await self._segment_batch(image)
        overlay = self.segmenter.overlay(image, mask) if fmt is ReplyFormat.OVERLAY else None
        reply = await asyncio.to_thread(render, fmt, mask, self.segmenter.meta, overlay)
        return Response(reply, media_type=MEDIA_TYPES[fmt])

    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005)  # both set from the config in __init__
    async def _segment_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        self.batch_sizes.append(len(images))
        return await asyncio.to_thread(self.segmenter.predict_batch, images)

    def _watch_drain(self) -> None:
        """Start reporting to the drain control (from the first request on: its event loop is running)."""
        if self._poller is None and self.drain_control is not None:
            self._poller = asyncio.get_running_loop().create_task(self._report_until_gone())

    async def _report_until_gone(self) -> None:
        replica = serve.get_replica_context().replica_id.unique_id
        while True:
            try:
                self.draining = await self.drain_control.poll.remote(replica, self.held, self.draining)
            except RayActorError:  # the server process that deployed this replica has gone
                return
            await asyncio.sleep(REPORT_PERIOD_S)

    def stats(self, reset: bool = False) -> dict[str, list]:
        """For the load benchmark: the sizes of the batches this replica ran and the seconds it spent on each
        segment request (reading the body to the reply's bytes); ``reset`` starts both afresh."""
        answer = {"batch_sizes": list(self.batch_sizes), "handler_seconds": list(self.handler_seconds)}
        if reset:
            self.batch_sizes.clear()
            self.handler_seconds.clear()
        return answer

    def check_health(self) -> None:
        """Ray Serve's periodic probe: the backend must still hold its resources."""
        self.segmenter.backend.activate()

    def __del__(self) -> None:  # Ray Serve's shutdown hook for a replica
        if (segmenter := getattr(self, "segmenter", None)) is not None:
            segmenter.close()


async def _read_body(request: Request, limits: Limits) -> bytes:
    """The body, read no further than the byte limit (413 past it)."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        check_body_length(size, limits)
        chunks.append(chunk)
    return b"".join(chunks)


SegmentDeployment = serve.deployment(SegmentReplica, name="segdeploy")
