"""Artifact specs (``--artifact``/``--engine``): ``PATH[@BACKEND[:OPTION]]`` (e.g. ``unet.onnx@openvino:f32``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from segdeploy.errors import UsageError
from segdeploy.runtime.artifacts import BackendKind, backend_for

# What ``:OPTION`` sets, per backend.
OPTION_OF_BACKEND = {"openvino": ("precision", ("auto", "f32", "bf16")), "torch": ("autocast", ("fp16", "bf16"))}


@dataclass(frozen=True)
class ArtifactSpec:
    """One artifact to bench, the backend that runs it and that backend's option (OPTION_OF_BACKEND)."""

    path: Path
    backend: BackendKind
    option: str | None = None

    @property
    def label(self) -> str:
        return f"{self.path.name}@{self.backend}" + (f":{self.option}" if self.option else "")

    @property
    def name(self) -> str:
        """The file name with the option, e.g. ``unet.xml:f32``: what a table row shows beside the backend."""
        return self.path.name + (f":{self.option}" if self.option else "")

    def segmenter_options(self) -> dict:
        if self.option is None:
            return {}
        key, _ = OPTION_OF_BACKEND[self.backend]
        return {key: self.option}


def parse_spec(text: str) -> ArtifactSpec:
    """Parse one spec; the backend defaults to the file type's, the option must suit the backend."""
    path_text, _, rest = text.partition("@")
    if not path_text:
        raise UsageError(f"artifact spec {text!r} has no path")
    backend_text, _, option = rest.partition(":")
    if backend_text and backend_text not in set(BackendKind) - {BackendKind.AUTO}:
        kinds = ", ".join(kind for kind in BackendKind if kind != BackendKind.AUTO)
        raise UsageError(f"artifact spec {text!r}: unknown backend {backend_text!r}; choose {kinds}")
    path = Path(path_text)
    backend = backend_for(path, backend_text or BackendKind.AUTO)
    if option:
        if backend not in OPTION_OF_BACKEND or option not in OPTION_OF_BACKEND[backend][1]:
            allowed = {name: choices for name, (_, choices) in OPTION_OF_BACKEND.items()}
            raise UsageError(f"artifact spec {text!r}: option {option!r} does not apply to {backend}; options: "
                             + "; ".join(f"{name}: {', '.join(choices)}" for name, choices in allowed.items()))
    return ArtifactSpec(path, backend, option or None)
