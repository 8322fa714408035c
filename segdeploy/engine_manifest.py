"""The engine's sidecar manifest ``<engine>.json`` and the compatibility decision (TensorRT-free).

A plan is tied to the exact TensorRT version (unless built version-compatible) and to the GPU's
compute capability (unless built hardware-compatible). The manifest records both, so a
mismatch is one clear line before TensorRT's serialization assertion, on any machine.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path

from segdeploy.errors import BadInputError
from segdeploy.fileio import atomic_write_text, require_file, sha256_file
from segdeploy.metadata import ArtifactMeta
from segdeploy.reading import field, load_json

MANIFEST_FORMAT = "segdeploy-engine-manifest"
MANIFEST_VERSION = 1


class HardwareCompat(StrEnum):
    """Which GPUs a plan may run on besides the one it was built for (TensorRT's HardwareCompatibilityLevel)."""

    NONE = "none"
    AMPERE_PLUS = "ampere_plus"
    SAME_COMPUTE_CAPABILITY = "same_compute_capability"


@dataclass(frozen=True)
class Environment:
    """What an engine was built on, or what it is about to run on."""

    tensorrt: str
    cuda: str
    gpu: str
    compute_capability: tuple[int, int]
    os: str
    arch: str


@dataclass(frozen=True)
class EngineManifest:
    meta: dict  # ArtifactMeta.to_dict()
    built_on: Environment
    profiles: list  # [{input name: [min, opt, max]}]
    precision: str
    onnx_sha256: str
    plan_sha256: str
    build_seconds: float
    version_compatible: bool
    hardware_compatibility: str  # a HardwareCompat value

    def artifact_meta(self) -> ArtifactMeta:
        return ArtifactMeta.from_dict(self.meta)

    def to_json(self) -> str:
        return json.dumps({"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **asdict(self)}, indent=2)


def manifest_path(engine: str | os.PathLike) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def write_manifest(manifest: EngineManifest, engine: str | os.PathLike) -> Path:
    path = manifest_path(engine)
    atomic_write_text(path, manifest.to_json() + "\n")
    return path


def read_manifest(engine: str | os.PathLike) -> EngineManifest:
    """The sidecar manifest of ``engine``, every field checked for its type (the file is untrusted)."""
    path = manifest_path(engine)
    if not path.is_file():
        raise BadInputError(f"{engine} has no manifest {path.name}; rebuild it with 'segdeploy build'")
    data = load_json(path, "engine manifest")
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise BadInputError(f"{path} is not a segdeploy engine manifest; rebuild the engine with 'segdeploy build'")
    where = str(path)
    env = field(data, "built_on", dict, where)
    capability = field(env, "compute_capability", list, f"{where}: built_on")
    if len(capability) != 2 or not all(type(part) is int and 0 <= part < 100 for part in capability):
        raise BadInputError(f"{where}: built_on.compute_capability must be [major, minor]")
    built_on = Environment(**{name: field(env, name, str, f"{where}: built_on")
                              for name in ("tensorrt", "cuda", "gpu", "os", "arch")},
                           compute_capability=tuple(capability))
    if not re.fullmatch(r"\d{1,4}(\.\d{1,6}){0,3}", built_on.tensorrt):
        raise BadInputError(f"{where}: built_on.tensorrt must be a version such as 10.7.0")
    profiles = field(data, "profiles", list, where)
    if not all(isinstance(profile, dict) for profile in profiles):
        raise BadInputError(f"{where}: profiles must be objects of input name -> [min, opt, max] shapes")
    compat = field(data, "hardware_compatibility", str, where)
    if compat not in set(HardwareCompat):
        raise BadInputError(f"{where}: hardware_compatibility {compat!r} is not one of "
                            f"{', '.join(HardwareCompat)}")
    return EngineManifest(
        meta=field(data, "meta", dict, where), built_on=built_on, profiles=profiles,
        precision=field(data, "precision", str, where), onnx_sha256=field(data, "onnx_sha256", str, where),
        plan_sha256=field(data, "plan_sha256", str, where),
        build_seconds=float(field(data, "build_seconds", (int, float), where)),
        version_compatible=field(data, "version_compatible", bool, where), hardware_compatibility=compat)


def check_plan_hash(manifest: EngineManifest, engine: str | os.PathLike) -> None:
    """The plan on disk is the one the manifest describes (catches mismatched pairs)."""
    if sha256_file(require_file(engine, "engine plan")) != manifest.plan_sha256:
        raise BadInputError(f"{engine} does not match its manifest (sha256 differs); rebuild with 'segdeploy build'")


def incompatibility(manifest: EngineManifest, current: Environment) -> str | None:
    """Why the engine cannot run on ``current`` (one line with the fix), or None if it can."""
    built = manifest.built_on
    rebuild = "rebuild it here with 'segdeploy build' from the ONNX (the timing cache makes rebuilds fast)"
    if (built.os, built.arch) != (current.os, current.arch):
        return f"engine built for {built.os}/{built.arch}, this machine is {current.os}/{current.arch}; {rebuild}"
    if not _version_ok(manifest, built.tensorrt, current.tensorrt):
        return (f"engine built with TensorRT {built.tensorrt}, this machine has {current.tensorrt}; {rebuild} "
                "(or build with --version-compatible)")
    if not _hardware_ok(manifest.hardware_compatibility, built.compute_capability, current.compute_capability):
        return (f"engine built for compute capability {_cc(built.compute_capability)} ({built.gpu}), this GPU is "
                f"{_cc(current.compute_capability)} ({current.gpu}); {rebuild} (or build with --hardware-compat "
                "ampere_plus)")
    return None


def _version_ok(manifest: EngineManifest, built: str, current: str) -> bool:
    if built == current:
        return True
    if not manifest.version_compatible:
        return False
    built_major, current_major = _major(built), _major(current)
    # Version-compatible plans run on later runtimes of the same major, and 10 -> 11.
    return (built_major == current_major and _version_tuple(current) >= _version_tuple(built)) or (
        built_major == 10 and current_major == 11)


def _hardware_ok(level: str, built: tuple[int, int], current: tuple[int, int]) -> bool:
    if level == HardwareCompat.AMPERE_PLUS:
        return current >= (8, 0)
    return built == current  # "none" and "same_compute_capability"


def _major(version: str) -> int:
    return _version_tuple(version)[0]


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _cc(capability: tuple[int, int]) -> str:
    return f"{capability[0]}.{capability[1]}"
