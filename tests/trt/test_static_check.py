"""The type check of the TensorRT path can fail: mypy, with the project's configuration and the
TensorRT 10.13 stubs in ``typings/``, reports removed TensorRT APIs, wrong argument types and CUDA
runtime calls outside ``segdeploy.cuda.CudaRuntime``, and passes the same code written correctly.

``scripts/setup`` extracts the stubs (``scripts/trt_stubs.py``); without them these tests fail
rather than skip, since setup is what CI runs. ``scripts/test`` runs the check itself.
"""

import importlib.util
import re
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ERROR = re.compile(r"^(?P<path>.+?):(?P<line>\d+): error: (?P<message>.*)  \[(?P<code>[a-z-]+)\]$")


def _stubs_are_current() -> bool:
    spec = importlib.util.spec_from_file_location("trt_stubs", ROOT / "scripts" / "trt_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.is_current()


def _mypy(tmp_path: Path, source: str) -> list[tuple[int, str, str]]:
    """(line, code, message) of each error mypy reports in ``source``, checked as the project checks."""
    if importlib.util.find_spec("mypy") is None:
        pytest.fail("mypy is not installed: run 'bash scripts/setup' (it installs the dev extra)")
    if not _stubs_are_current():
        pytest.fail("typings/ does not hold the patched tensorrt-stubs: run 'bash scripts/setup' "
                    "(or python3 scripts/trt_stubs.py)")
    from mypy import api

    path = tmp_path / "snippet.py"
    path.write_text(textwrap.dedent(source))
    stdout, stderr, _ = api.run(["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                                 str(ROOT / ".mypy_cache"), str(path)])
    assert not stderr, stderr
    found = [ERROR.match(line) for line in stdout.splitlines()]
    return [(int(m["line"]), m["code"], m["message"]) for m in found if m and Path(m["path"]).name == path.name]


TENSORRT_CORRECT = """
    import tensorrt as trt


    def run(engine: trt.ICudaEngine, context: trt.IExecutionContext, stream: int) -> bool:
        context.set_input_shape("input", (1, 3, 64, 64))
        context.set_tensor_address("input", 0x1000)
        shape = engine.get_tensor_shape("input")
        network = trt.Builder(trt.Logger()).create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
        return context.execute_async_v3(stream) and len(shape) == 4 and network.num_inputs == 1
"""

# Each wrong line, with the error code mypy must give it.
TENSORRT_WRONG = {
    'context.execute_async_v2([0, 0], stream)': "attr-defined",  # removed in TensorRT 10 (binding indices)
    'context.set_binding_shape(0, (1, 3, 64, 64))': "attr-defined",  # removed in TensorRT 10
    'context.set_input_shap("input", (1, 3, 64, 64))': "attr-defined",  # misspelled
    'trt.Builder(trt.Logger()).build_engine(network, config)': "attr-defined",  # removed in TensorRT 10
    'context.set_tensor_address("input", "0x1000")': "arg-type",  # a device pointer is an int
    'engine.get_tensor_shape(0)': "arg-type",  # tensors are named since TensorRT 10, not indexed
}


def _tensorrt_snippet(body: list[str]) -> str:
    lines = "\n".join(f"    {line}" for line in body)
    return ("import tensorrt as trt\n\n\n"
            "def run(engine: trt.ICudaEngine, context: trt.IExecutionContext, stream: int,\n"
            "        network: trt.INetworkDefinition, config: trt.IBuilderConfig) -> None:\n" + lines + "\n")


def test_correct_tensorrt_code_passes(tmp_path):
    """Also proves the stubs are found: without them ``import tensorrt`` is an error here."""
    assert _mypy(tmp_path, TENSORRT_CORRECT) == []


def test_removed_apis_and_wrong_argument_types_are_reported(tmp_path):
    snippet = _tensorrt_snippet(list(TENSORRT_WRONG))
    errors = _mypy(tmp_path, snippet)
    first = snippet.splitlines().index(f"    {next(iter(TENSORRT_WRONG))}") + 1
    reported = {(line, code) for line, code, _ in errors}
    missed = [text for line, (text, code) in enumerate(TENSORRT_WRONG.items(), first) if (line, code) not in reported]
    assert not missed, f"mypy did not report: {missed}; it said {errors}"


CUDA_SNIPPET = """
    from segdeploy.cuda import cuda_runtime

    runtime = cuda_runtime()
    error, pointer = runtime.cudaMallocHost(1024)
    runtime.cudaGraphInstantiate(object(), b"", 0)
    runtime.cudaMallocHost("1024")
    runtime.cudaMemcpy(pointer, 0, 1024, runtime.cudaMemcpyKind.cudaMemcpyHostToDevice)
"""


def test_cuda_runtime_calls_are_checked_against_the_protocol(tmp_path):
    """cuda-python has no stubs: ``CudaRuntime`` types the calls segdeploy makes, and only those."""
    errors = _mypy(tmp_path, CUDA_SNIPPET)
    expected = {(6, "call-arg"),  # cuda-python 11's cudaGraphInstantiate(graph, b"", flags)
                (7, "arg-type"),  # a size is an int
                (8, "attr-defined")}  # a call the Protocol does not declare: declare it first
    assert expected <= {(line, code) for line, code, _ in errors}, errors
    assert {line for line, _, _ in errors} == {6, 7, 8}, errors  # lines 2-5 are correct
