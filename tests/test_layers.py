"""The package's layers: no subpackage imports a later layer, and no two import each other.

Every import counts, also those inside functions (the lazy imports that keep
``import segdeploy`` light): a lazy import against the order is still a dependency.
"""

import ast
from collections import defaultdict
from pathlib import Path

import segdeploy

LAYERS = (
    ("errors", "fileio", "sizes", "limits", "metadata", "artifact_meta", "engine_manifest", "onnx_graph",
     "module_paths", "cuda", "isa", "sniff", "reading", "ir_file"),
    ("models", "data", "metrics"),
    ("backends",),
    ("export", "train", "quantize", "trt"),
    ("runtime", "bench", "info"),
    ("demo", "serve", "triton", "optimize", "client"),
    ("cli", "__main__"),
)
LAYER_OF = {unit: index for index, units in enumerate(LAYERS) for unit in units}
PACKAGE = Path(segdeploy.__file__).parent


def _unit(path: Path) -> str:
    """The first name under ``segdeploy/``: a subpackage or a top-level module."""
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _imports() -> dict[str, set[tuple[str, str]]]:
    """unit -> {(imported unit, importing file)} for every ``segdeploy.*`` import."""
    edges: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for path in PACKAGE.rglob("*.py"):
        source = _unit(path)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                parts = name.split(".")
                if parts[0] == "segdeploy" and len(parts) > 1 and parts[1] != source and parts[1] in LAYER_OF:
                    edges[source].add((parts[1], str(path.relative_to(PACKAGE))))
    return edges


def test_every_unit_has_a_layer():
    units = {_unit(path) for path in PACKAGE.rglob("*.py")} - {"__init__"}
    assert units <= set(LAYER_OF), f"add {sorted(units - set(LAYER_OF))} to LAYERS (and the README's layout table)"


def test_no_import_against_the_layer_order():
    against = sorted(f"{where} imports segdeploy.{target} (layer {LAYER_OF[target] + 1} > {LAYER_OF[source] + 1})"
                     for source, targets in _imports().items() for target, where in targets
                     if LAYER_OF[target] > LAYER_OF[source])
    assert not against, "\n".join(against)


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among units (depth-first search), or None."""
    state: dict[str, str] = {}

    def visit(unit: str, trail: list[str]) -> list[str] | None:
        state[unit] = "open"
        for target in sorted(edges.get(unit, ())):
            if state.get(target) == "open":
                return [*trail[trail.index(target):], target] if target in trail else [unit, target]
            if target not in state and (found := visit(target, [*trail, target])):
                return found
        state[unit] = "done"
        return None

    return next((found for unit in sorted(edges) if unit not in state and (found := visit(unit, [unit]))), None)


def test_no_cycle_between_units():
    edges = {source: {target for target, _ in targets} for source, targets in _imports().items()}
    assert _cycle(edges) is None, " -> ".join(_cycle(edges))
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # the search finds one
