"""``build_engine``: a segdeploy ONNX -> TensorRT plan + manifest, to the TensorRT 10/11 API.

The ONNX and its metadata are validated before TensorRT is imported, so bad input is bad
input on any machine. The network is strongly typed (TensorRT 11 has no other kind; on 10
the flag is set), so precision comes from the ONNX: FP32, FP16 from ``quantize --precision
fp16``, INT8 as Q/DQ from ``quantize --precision int8``; no precision builder flags are set.
Written to NVIDIA's documented API; not executed in this repository (no TensorRT here).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from segdeploy.artifact_meta import ArtifactFormat, artifact_format, read_metadata
from segdeploy.engine_manifest import EngineManifest, Environment, HardwareCompat, write_manifest
from segdeploy.errors import BadInputError, CheckFailedError, check_range, convert_choices, require
from segdeploy.fileio import atomic_output, atomic_write_bytes, sha256_bytes, sha256_file
from segdeploy.metadata import ArtifactMeta
from segdeploy.onnx_graph import load_onnx
from segdeploy.trt.profiles import Profile, default_profile, parse_shape, validate_profile

if TYPE_CHECKING:  # for mypy, against TensorRT's stubs; at run time TensorRT is imported by build_engine
    import tensorrt as trt


@dataclass(frozen=True)
class BuildConfig:
    min_shape: str | None = None  # NxCxHxW or input:NxCxHxW; None: from the metadata
    opt_shape: str | None = None
    max_shape: str | None = None
    workspace_mib: int | None = None  # memory pool limit; None: TensorRT's default (all device memory)
    timing_cache: str | None = None  # loaded if present, saved after the build
    opt_level: int | None = None  # builder_optimization_level 0-5 (TensorRT default 3)
    hardware_compat: HardwareCompat = HardwareCompat.NONE
    version_compatible: bool = False

    def __post_init__(self) -> None:
        convert_choices(self, {"hardware_compat": (HardwareCompat, "--hardware-compat")})
        if self.opt_level is not None:
            check_range(self.opt_level, "--opt-level", low=0, high=5)
        if self.workspace_mib is not None:
            check_range(self.workspace_mib, "--workspace (MiB)", low=1)


@dataclass(frozen=True)
class BuildReport:
    output: str
    manifest: str
    profile: dict
    precision: str
    seconds: float
    size_bytes: int
    tensorrt: str
    gpu: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def plan_build(onnx_path: str | os.PathLike, config: BuildConfig) -> tuple[onnx.ModelProto, ArtifactMeta, Profile]:
    """Everything checked without TensorRT: readable ONNX, segdeploy metadata, a valid profile."""
    model = load_onnx(onnx_path, load_weights=False)
    meta = read_metadata(model, str(onnx_path))
    static = _static_input_shape(model, meta)
    profile = default_profile(meta, static)
    chosen = [parse_shape(text, meta.io.input_name) if text else default for text, default in
              ((config.min_shape, profile.min), (config.opt_shape, profile.opt), (config.max_shape, profile.max))]
    profile = Profile(meta.io.input_name, *chosen)
    validate_profile(profile, meta, static)
    return model, meta, profile


def _static_input_shape(model: onnx.ModelProto, meta: ArtifactMeta) -> tuple[int, ...] | None:
    inputs = [graph_input for graph_input in model.graph.input if graph_input.name == meta.io.input_name]
    if not inputs:
        raise BadInputError(f"the ONNX has no input named {meta.io.input_name!r} (its metadata says so)")
    # A symbolic or absent dimension reads as dim_value 0, as does a literal 0: either way not static.
    values = tuple(dim.dim_value for dim in inputs[0].type.tensor_type.shape.dim)
    return values if all(values) else None


def build_engine(onnx_path: str | os.PathLike, out: str | os.PathLike, config: BuildConfig = BuildConfig(),
                 log: Callable[[str], None] | None = None) -> BuildReport:
    """Build ``out`` (the plan) and ``out.json`` (its manifest); ``log(line)`` hears TensorRT's messages."""
    if artifact_format(out) != ArtifactFormat.ENGINE:  # what Segmenter and bench will recognise as an engine
        raise BadInputError(f"engine files end in .engine, .trt or .plan, got {Path(out).name}")
    _, meta, profile = plan_build(onnx_path, config)
    require("tensorrt", "tensorrt")  # MissingDependencyError naming the extra; then the typed import
    import tensorrt as trt

    from segdeploy.cuda import cuda_api

    started = time.perf_counter()
    out = Path(out)
    logger = _logger(log)
    builder = trt.Builder(logger)
    # STRONGLY_TYPED: required on 10.x for ONNX types and Q/DQ to decide precision, implied on 11.x.
    # The flag's integer changed between 10 and 11: never hard-code it.
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [parser.get_error(i) for i in range(parser.num_errors)]
        raise CheckFailedError("TensorRT cannot parse the ONNX:\n" + "\n".join(
            f"  node {error.node_name() or '?'} ({error.node_operator() or '?'}): {error.desc()}" for error in errors))
    builder_config = _builder_config(builder, config, profile)
    # Held until the build ends, as TensorRT requires.
    _timing_cache = _load_timing_cache(builder_config, config.timing_cache)
    plan = builder.build_serialized_network(network, builder_config)
    if plan is None:
        raise CheckFailedError("TensorRT could not build an engine from this ONNX; see the TensorRT log above")
    data = bytes(plan)
    with atomic_output(out) as tmp:
        tmp.write_bytes(data)
    if config.timing_cache:
        atomic_write_bytes(config.timing_cache, bytes(builder_config.get_timing_cache().serialize()))
    name, capability = cuda_api().device_name_and_capability()
    environment = Environment(trt.__version__, _cuda_version(), name, capability, platform.system().lower(),
                              platform.machine())
    seconds = time.perf_counter() - started
    manifest = EngineManifest(
        meta=meta.to_dict(), built_on=environment, profiles=[profile.to_dict()], precision=meta.precision.value,
        onnx_sha256=sha256_file(onnx_path), plan_sha256=sha256_bytes(data), build_seconds=seconds,
        version_compatible=config.version_compatible, hardware_compatibility=config.hardware_compat,
    )
    manifest_file = write_manifest(manifest, out)
    return BuildReport(str(out), str(manifest_file), profile.to_dict(), meta.precision.value, seconds, len(data),
                       trt.__version__, name)


def _builder_config(builder: trt.Builder, config: BuildConfig, profile: Profile) -> trt.IBuilderConfig:
    import tensorrt as trt  # already imported by build_engine

    builder_config = builder.create_builder_config()
    if config.workspace_mib:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_mib << 20)
    if config.opt_level is not None:
        builder_config.builder_optimization_level = config.opt_level
    if config.hardware_compat != HardwareCompat.NONE:  # TensorRT's member names are ours in upper case
        builder_config.hardware_compatibility_level = getattr(trt.HardwareCompatibilityLevel,
                                                              config.hardware_compat.name)
    if config.version_compatible:
        builder_config.set_flag(trt.BuilderFlag.VERSION_COMPATIBLE)
    optimization_profile = builder.create_optimization_profile()
    # pybind11 converts tuples to Dims implicitly (the stub's Dims docstring says so; its signatures do not).
    optimization_profile.set_shape(profile.input_name, profile.min, profile.opt, profile.max)  # type: ignore[arg-type]
    builder_config.add_optimization_profile(optimization_profile)
    return builder_config


def _load_timing_cache(builder_config: trt.IBuilderConfig, path: str | None) -> trt.ITimingCache | None:
    if not path:
        return None
    blob = Path(path).read_bytes() if Path(path).is_file() else b""
    cache = builder_config.create_timing_cache(blob)  # b"" creates an empty cache
    builder_config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def _logger(log: Callable[[str], None] | None) -> trt.ILogger:
    import tensorrt as trt  # already imported by build_engine

    return trt.Logger(trt.Logger.WARNING) if log is None else _forwarding_logger(log)


def _forwarding_logger(log: Callable[[str], None]) -> trt.ILogger:
    """A logger that hands TensorRT's messages up to INFO to ``log``, prefixed ``[TensorRT]``."""
    import tensorrt as trt  # already imported by build_engine

    class _Forward(trt.ILogger):
        def __init__(self) -> None:
            trt.ILogger.__init__(self)

        def log(self, severity: trt.ILogger.Severity, message: str) -> None:
            if int(severity) <= int(trt.ILogger.Severity.INFO):  # INTERNAL_ERROR=0 ... VERBOSE=4
                log(f"[TensorRT] {message}")

    return _Forward()


def _cuda_version() -> str:
    """The CUDA runtime's version as ``major.minor`` (cuda-python), else ``unknown`` (PyCUDA only, or an error)."""
    from segdeploy.cuda import cuda_runtime

    try:
        runtime = cuda_runtime()
    except ImportError:
        return "unknown"
    error, version = runtime.cudaRuntimeGetVersion()
    return f"{version // 1000}.{version % 1000 // 10}" if error == runtime.cudaError_t.cudaSuccess else "unknown"
