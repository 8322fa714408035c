"""segdeploy uses no TensorRT API that TensorRT 11 removed.

The type check runs against TensorRT 10.13's stubs, which still list what 11.x dropped; this
deny-list, from ``../shared/docs/tensorrt-api.md`` section 1.1 ("Absent from 11.4"), closes that
gap. An ``ast`` scan of ``segdeploy/`` finds attribute uses (``x.NAME``, ``getattr(x, "NAME")``)
and ``from tensorrt import NAME``. A name that is also common outside TensorRT is qualified by its
receiver (``BuilderFlag.FP16``, ``context.execute(...)``), and nothing reached through a
segdeploy module (``builder.build_engine`` with ``from segdeploy.trt import builder``) counts.
"""

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import segdeploy

PACKAGE = Path(segdeploy.__file__).parent


@dataclass(frozen=True)
class Removed:
    """``name``: the attribute, a regex matched in full. ``on``: for an ambiguous name, a regex the
    receiver's last name must match in full (case-insensitive); None: any receiver.
    ``example``: code that uses it (default ``on.name`` or ``x.name``), for the scanner's own test."""

    name: str
    on: str | None = None
    example: str | None = None

    def matches(self, attribute: str, receiver: str | None) -> bool:
        """``receiver`` None: a name imported from tensorrt, which only an unqualified entry matches."""
        if not re.fullmatch(self.name, attribute):
            return False
        if self.on is None:
            return True
        return receiver is not None and re.fullmatch(self.on, receiver, re.IGNORECASE) is not None

    def sample(self) -> str:
        return self.example or f"{self.on or 'x'}.{self.name}"


PRECISION_FLAGS = ("FP16", "BF16", "INT8", "FP8", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                   "PREFER_PRECISION_CONSTRAINTS", "REJECT_EMPTY_ALGORITHMS", "WEIGHTLESS", "DIRECT_IO")
CONTEXT, ENGINE_OR_BUILDER, LAYER = r".*(context|ctx)", r".*(engine|builder)", r".*layers?|get_layer"

REMOVED = [
    # BuilderFlag: weak typing and implicit quantization (DIRECT_IO: removed or deprecated, docs disagree)
    *(Removed(flag, on="BuilderFlag") for flag in PRECISION_FLAGS),
    # Calibration
    Removed(r"IInt8\w*Calibrator\d*", example="class Calibrator(trt.IInt8EntropyCalibrator2): pass"),
    Removed("CalibrationAlgoType"),
    Removed("int8_calibrator"),
    Removed("set_calibration_profile"),
    Removed("get_calibration_profile"),
    Removed("QuantizationFlag"),
    # Typing: strong typing only
    Removed("set_dynamic_range"),
    Removed("precision", on=LAYER, example="network.get_layer(0).precision = trt.float16"),
    Removed("set_output_type"),
    Removed("EXPLICIT_BATCH"),
    # Builder
    Removed("platform_has_tf32"),
    Removed("platform_has_fast_fp16"),
    Removed("platform_has_fast_int8"),
    *(Removed(source, on="TacticSource") for source in ("CUBLAS", "CUBLAS_LT", "CUDNN")),
    Removed("algorithm_selector"),
    # Runtime (in 11) and the binding-index era (since 10)
    Removed("device_memory_size"),
    Removed("create_execution_context_without_device_memory"),
    Removed("weight_streaming_budget"),
    Removed("IStreamReader"),
    Removed("execute", on=CONTEXT, example="self._context.execute(1, bindings)"),
    Removed("execute_async"),
    Removed("execute_async_v2"),
    Removed(r"get_binding_\w+", example="engine.get_binding_shape(0)"),
    Removed("max_batch_size", on=ENGINE_OR_BUILDER, example="builder.max_batch_size = 8"),
    Removed("build_engine", example="trt_builder.build_engine(network, config)"),
    Removed("max_workspace_size"),
    # Parser
    Removed("supports_model"),
    Removed("parse_with_weight_descriptors"),
]

# Near misses the scan must leave alone: segdeploy's own names and the TensorRT 11 replacements.
ALLOWED = """
from segdeploy.trt import builder
from segdeploy.trt.builder import build_engine
from tensorrt import IStreamReaderV2, BuilderFlag
build_engine(onnx_path, out)
builder.build_engine(onnx_path, out)
meta.precision, Precision.FP16, HighPrecision.FP16, config.max_batch_size, cursor.execute(query)
engine.device_memory_size_v2, context.execute_async_v3(stream), parser.supports_model_v2(model)
engine.weight_streaming_budget_v2, trt.BuilderFlag.TF32, trt.TacticSource.EDGE_MASK_CONVOLUTIONS
"""


def _last_name(node: ast.expr) -> str:
    """The receiver's identifying name: ``a.b`` -> b, ``f(x)`` -> f, ``a.g(x)`` -> g, ``a[i]`` -> a."""
    while isinstance(node, ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else ""


def _root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _segdeploy_names(tree: ast.Module) -> set[str]:
    """Names a file binds to segdeploy modules and objects (what they reach is not TensorRT)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("segdeploy"):
            names.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names
                         if alias.name.startswith("segdeploy"))
    return names


def _uses(tree: ast.Module) -> list[tuple[int, str, str | None]]:
    """(line, attribute, receiver's last name) of each attribute use; receiver None for a tensorrt import."""
    ours = _segdeploy_names(tree)
    uses: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _root_name(node.value) not in ours:
            uses.append((node.lineno, node.attr, _last_name(node.value)))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _root_name(node.args[0]) not in ours):
            uses.append((node.lineno, node.args[1].value, _last_name(node.args[0])))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tensorrt":
            uses.extend((node.lineno, alias.name, None) for alias in node.names)
    return uses


def removed_uses(source: str, filename: str = "<source>") -> list[str]:
    """``file:line: NAME (removed in TensorRT 11)`` for each use of a deny-listed API in ``source``."""
    return [f"{filename}:{line}: {attribute} on {receiver or 'tensorrt'} (removed in TensorRT 11)"
            for line, attribute, receiver in _uses(ast.parse(source, filename))
            if any(entry.matches(attribute, receiver) for entry in REMOVED)]


def test_segdeploy_uses_no_api_removed_in_tensorrt_11():
    found = [hit for path in sorted(PACKAGE.rglob("*.py"))
             for hit in removed_uses(path.read_text(), str(path.relative_to(PACKAGE.parent)))]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("entry", REMOVED, ids=lambda entry: entry.name)
def test_the_scan_catches_each_entry(entry):
    hits = removed_uses(entry.sample())
    assert len(hits) == 1 and hits[0].startswith("<source>:1: "), (entry.sample(), hits)


@pytest.mark.parametrize("source", ["from tensorrt import IInt8MinMaxCalibrator",
                                    "from tensorrt import CalibrationAlgoType as Algo",
                                    'flag = getattr(trt.BuilderFlag, "FP16")',
                                    "config.set_flag(trt.BuilderFlag.INT8)",
                                    "layers[3].precision = trt.int8"])
def test_imports_getattr_and_nested_receivers_are_caught(source):
    assert len(removed_uses(source)) == 1, source


def test_segdeploy_names_and_tensorrt_11_replacements_are_not_caught():
    assert removed_uses(ALLOWED) == []
