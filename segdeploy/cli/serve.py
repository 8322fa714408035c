"""``segdeploy serve ARTIFACT``: the artifact over HTTP on Ray Serve until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Annotated

import typer

from segdeploy.cli import console
from segdeploy.cli.options import BackendOpt, DeviceOpt, ThreadsOpt
from segdeploy.runtime.artifacts import BackendKind, Device


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)


def serve_command(
    artifact: Annotated[Path, typer.Argument(help="Checkpoint, .onnx, OpenVINO .xml or TensorRT engine.")],
    replicas: Annotated[int, typer.Option(min=1, help="Replicas (each loads the model once).")] = 1,
    autoscale: Annotated[str | None, typer.Option(
        help="MIN:MAX replicas, scaled on ongoing requests (instead of --replicas).")] = None,
    scale_down_s: Annotated[float, typer.Option(
        min=0, help="Autoscaling: seconds below target load before a replica is removed.")] = 30.0,
    max_batch: Annotated[int, typer.Option(min=1, help="Dynamic batching: most requests per backend call "
                                                      "(1: no batching).")] = 8,
    batch_wait_ms: Annotated[float, typer.Option(min=0, help="Longest wait for a batch to fill.")] = 5.0,
    threads: ThreadsOpt = None,
    replica_cpus: Annotated[float | None, typer.Option(
        help="Ray CPUs reserved per replica, may be fractional (default: --threads, else 1).")] = None,
    backend: BackendOpt = BackendKind.AUTO,
    device: DeviceOpt = Device.AUTO,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="HTTP port.")] = 8000,
    address: Annotated[str | None, typer.Option(
        help="Join this Ray cluster ('auto': the one this machine is in); default: start a local one.")] = None,
    api_key_file: Annotated[Path | None, typer.Option(
        help="File holding the API key clients must send (else $SEGDEPLOY_API_KEY; neither: no key).")] = None,
    max_image_bytes: Annotated[int, typer.Option(min=1, help="Largest request body.")] = 20_000_000,
    max_pixels: Annotated[int, typer.Option(min=1, help="Largest image, in pixels.")] = 40_000_000,
    max_queued: Annotated[int, typer.Option(min=1, help="Requests queued beyond the replicas' before 503.")] = 64,
    metrics_port: Annotated[int | None, typer.Option(
        min=1, max=65535, help="Ray's Prometheus metrics port (local instance; default: Ray picks).")] = None,
) -> None:
    """Serve a model over HTTP (POST /v1/segment) with dynamic batching, replicas and autoscaling on Ray."""
    from segdeploy.serve.config import ServeConfig, parse_autoscale, read_api_key
    from segdeploy.serve.server import serve_artifact

    config = ServeConfig(
        artifact, backend=backend, device=device, threads=threads, replicas=replicas,
        autoscale=parse_autoscale(autoscale) if autoscale else None, scale_down_s=scale_down_s, max_batch=max_batch,
        batch_wait_ms=batch_wait_ms, replica_cpus=replica_cpus, host=host, port=port, address=address,
        api_key=read_api_key(api_key_file, dict(os.environ)), max_image_bytes=max_image_bytes,
        max_pixels=max_pixels, max_queued=max_queued, metrics_port=metrics_port)
    console.info(f"starting Ray and {config.replica_range[0]} replica(s) of {artifact.name} ...")
    served = serve_artifact(config, threading.Event(), lambda info: _print_ready(info, config), stop_on_signals=True)
    console.out.print(f"stopped: drained in-flight requests and shut down ({served.url})")


def _print_ready(info, config) -> None:
    low, high = info.replicas
    replicas = f"{low}" if low == high else f"{low}-{high} (autoscaling)"
    key = "an API key (Authorization: Bearer KEY)" if config.api_key else "no API key"
    console.out.print(f"serving {config.artifact.name} at {info.url} with {replicas} replica(s), batches of up to "
                      f"{config.max_batch}, {key}; POST {info.url}/v1/segment, GET /v1/metadata, GET /healthz")
    if info.metrics_url:
        console.out.print(f"metrics (Prometheus, Ray Serve's request counts and latencies): {info.metrics_url}")
    console.out.print("Ctrl-C or SIGTERM stops it after the requests in flight")
