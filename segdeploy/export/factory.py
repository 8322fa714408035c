"""The user's own ``nn.Module``, built by their own code and given segdeploy metadata, for export.

``--model-factory package.module:function`` names the code that builds the module (as
``uvicorn module:app`` does; the working folder is importable): segdeploy never unpickles code.
Weights load from a state dict with ``weights_only=True`` or from ``.safetensors``. Outputs that
are dicts (torchvision's ``{"out", "aux"}``), objects with ``.logits`` (Hugging Face) or tuples
(main + auxiliary heads) are reduced to one tensor by ``SelectOutput``, which is exported with the
model. Classes and the output stride are established by running the module, as ``adopt`` does.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from segdeploy.artifact_meta import read_checkpoint
from segdeploy.data.preprocess import normalize
from segdeploy.data.synthetic import make_scene
from segdeploy.errors import BadInputError, library_reason
from segdeploy.export.adopt import output_geometry, probe_sizes
from segdeploy.export.adopt_config import MAX_FACTORY_ARGS_CHARS, FactoryConfig
from segdeploy.metadata import ArtifactMeta, TensorIO, new_meta
from segdeploy.models.checkpoint import check_state_fits


def factory_model(config: FactoryConfig) -> tuple[nn.Module, ArtifactMeta]:
    """The user's module wrapped to one logits tensor (eval mode, weights loaded), and its metadata."""
    module = _call_factory(config.factory, _factory_args(config.factory_args))
    if config.weights:
        _load_weights(module, Path(config.weights), config.factory)
    model = SelectOutput(module.eval(), config.output_name)
    pre = config.labels.preprocess_for(config.labels.input_size)
    probes = _probe(model, pre)
    channels = probes[0]["output"][1]
    names, palette = config.labels.labels(channels, model.describe())
    geometry = output_geometry(probes, model.describe())
    meta = new_meta("user", {"factory": config.factory, "factory_args": json.loads(config.factory_args)},
                    len(names), class_names=names, palette=palette, preprocess=pre,
                    io=TensorIO(**geometry), ignore_index=config.labels.ignore())
    return model, meta.with_record("factory", weights=config.weights, output=model.describe(), probes=probes)


def _factory_args(text: str) -> dict[str, Any]:
    if len(text) > MAX_FACTORY_ARGS_CHARS:
        raise BadInputError(f"--factory-args is {len(text)} characters; at most {MAX_FACTORY_ARGS_CHARS}")
    try:
        args = json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise BadInputError(f"--factory-args is not JSON: {library_reason(exc, 80)}") from exc
    if not isinstance(args, dict):
        raise BadInputError(f"--factory-args must be a JSON object of keyword arguments, got {type(args).__name__}")
    return args


def _call_factory(spec: str, args: dict[str, Any]) -> nn.Module:
    module_name, _, function_name = spec.partition(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:  # as `python -m` and uvicorn do: the user's own modules beside them are importable
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the user's module raises while importing
        raise BadInputError(f"cannot import {module_name!r} for --model-factory: "
                            f"{type(exc).__name__}: {library_reason(exc, 120)}") from exc
    finally:
        if added:
            sys.path.remove(cwd)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise BadInputError(f"{module_name} has no function {function_name!r} for --model-factory")
    try:
        built = function(**args)
    except Exception as exc:  # the user's code: its failure is their input's, named as such
        raise BadInputError(f"{spec}({', '.join(args)}) raised {type(exc).__name__}: "
                            f"{library_reason(exc, 120)}") from exc
    if not isinstance(built, nn.Module):
        raise BadInputError(f"{spec} returned a {type(built).__name__}, not a torch nn.Module")
    return built


def _load_weights(module: nn.Module, path: Path, factory: str) -> None:
    if path.suffix == ".safetensors":
        state = _read_safetensors(path)
    else:
        payload = read_checkpoint(path)
        state = payload.get("state_dict", payload) if isinstance(payload.get("state_dict"), dict) else payload
    check_state_fits(module, state, factory, path)
    module.load_state_dict(state, strict=True)


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise BadInputError(f"weights not found: {path}")
    try:
        return load_file(str(path))
    except SafetensorError as exc:
        raise BadInputError(f"{path.name} is not a valid .safetensors file ({library_reason(exc, 100)})") from exc


class SelectOutput(nn.Module):
    """The user's module with its output reduced to the logits tensor: ``out[key]`` of a dict, ``.logits``
    of an object, ``out[i]`` of a tuple or list, or the tensor itself. Exported as part of the graph."""

    def __init__(self, model: nn.Module, output: str | None) -> None:
        super().__init__()
        self.model, self.output = model, output

    def describe(self) -> str:
        return "the model's output" + ("" if self.output is None else f" {self.output!r}")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return select(self.model(images), self.output)


def select(result: Any, output: str | None) -> torch.Tensor:
    """The logits in ``result`` (see SelectOutput); BadInputError naming what there is otherwise."""
    if isinstance(result, torch.Tensor) and output is None:
        return result
    if isinstance(result, dict) or hasattr(result, "keys"):
        keys = list(result.keys())
        if not keys:
            raise BadInputError("the model returns an empty dict; it has no logits to export")
        key = output if output is not None else next((k for k in ("out", "logits") if k in keys), keys[0])
        if key not in keys:
            raise BadInputError(f"the model's output has no {key!r}; it has {', '.join(map(repr, keys))}")
        return result[key]
    if hasattr(result, "logits") and output in (None, "logits"):
        return result.logits
    if isinstance(result, tuple | list):
        index = int(output) if output is not None and output.isdigit() else 0 if output is None else None
        if index is None or index >= len(result):
            raise BadInputError(f"the model returns a {type(result).__name__} of {len(result)}; --output-name "
                                f"takes an index 0-{len(result) - 1}")
        return result[index]
    raise BadInputError(f"the model returns a {type(result).__name__}; --output-name {output!r} does not apply")


def _probe(model: nn.Module, pre) -> list[dict]:
    """Output shapes of the eager model at the eval size and one divisor step larger (as adopt probes)."""
    probes = []
    for seed, size in enumerate(probe_sizes(pre)):
        batch = normalize(make_scene(seed, *size)[0][None], pre)
        try:
            with torch.no_grad():
                output = model(torch.from_numpy(batch))
        except BadInputError:
            raise
        except Exception as exc:  # the user's forward: its failure is named as theirs
            raise BadInputError(f"the model's forward raised {type(exc).__name__} on a 1x3x{size[0]}x{size[1]} "
                                f"input: {library_reason(exc, 120)}") from exc
        if not isinstance(output, torch.Tensor) or output.ndim != 4 or not output.is_floating_point():
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise BadInputError(f"the selected output is {shape}; export takes logits (N, C, h, w)")
        probes.append({"input": [1, *size], "output": [int(d) for d in output.shape]})
    return probes
