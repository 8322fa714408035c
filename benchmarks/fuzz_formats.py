"""Structure-aware mutators for checkpoints (the zip torch writes, its data.pkl, tensors) and ONNX protos.

Used by benchmarks/fuzz_cases.py; the generic mutators live in benchmarks/fuzz_mutators.py.
"""

from __future__ import annotations

import json
import zipfile
from typing import Any

from fuzz_mutators import (
    INTERESTING,
    chunk,
    dump_json,
    find_all,
    flip,
    ints,
    magic,
    mutate_tree,
    pick,
    pool_value,
    random_bytes,
    truncate,
)


# -- checkpoints: the zip torch writes and its data.pkl -------------------------------------
def zip_entries(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(__import__("io").BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def rezip(entries: list[tuple[str, bytes]]) -> bytes:
    """A torch zip with a fixed archive name, date and serialization id (so seeds are reproducible)."""
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries:
            name = "archive/" + name.split("/", 1)[1]
            data = b"0" * len(data) if name.endswith("serialization_id") else data
            archive.writestr(zipfile.ZipInfo(name, date_time=(2000, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def torch_bytes(payload: Any) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return rezip(zip_entries(buffer.getvalue()))


def _tensor_variant(tensor, rng):
    import torch

    variants = [lambda: tensor.reshape(-1), lambda: tensor[:0], lambda: tensor.double(), lambda: tensor.half(),
                lambda: tensor.long(), lambda: tensor.bool(), lambda: torch.zeros(()), lambda: tensor.unsqueeze(0),
                lambda: torch.full_like(tensor, float("nan")), lambda: torch.zeros(1).expand(1 << 30),
                lambda: torch.zeros(tensor.shape, dtype=torch.complex64), lambda: tensor.t() if tensor.dim() == 2 else
                tensor.flip(0), lambda: 1, lambda: "weights", lambda: [1, 2], lambda: {"tensor": tensor},
                lambda: torch.sparse_coo_tensor(torch.tensor([[10**6]]), torch.tensor([1.0]), (3,),
                                                check_invariants=False),
                lambda: torch.zeros(tensor.shape, dtype=torch.uint8)]
    return pick(rng, variants)()


def mutate_payload(payload: dict, rng):
    """A Python-level change of a checkpoint or state dict, saved again by torch."""
    state = payload.get("state_dict", payload)
    ops = ["tensor", "tensor", "key", "whole"] + (["meta", "meta", "format"] if "meta" in payload else [])
    op = pick(rng, ops)
    if op == "meta":
        payload["meta"], desc = mutate_tree(payload["meta"], rng, raw=False)
        return payload, f"meta {desc}"
    if op == "format":
        payload["format"] = pool_value(rng, raw=False)
        return payload, "format value replaced"
    if op == "whole":
        import torch

        return pick(rng, ([], "x", 1, None, torch.zeros(3), {"format": "segdeploy.checkpoint"}, {1: torch.zeros(1)},
                          {"format": "segdeploy.checkpoint", "meta": None, "state_dict": state})), "whole payload"
    if not isinstance(state, dict) or not state:
        return payload, "no tensor to change"
    key = pick(rng, sorted(state))
    if op == "tensor":
        state[key] = _tensor_variant(state[key], rng)
        return payload, f"tensor {key} changed"
    action = pick(rng, ("drop", "rename", "extra", "int key"))
    value = state.pop(key) if action in ("drop", "rename", "int key") else state[key]
    if action != "drop":
        state[{"rename": key + "x", "extra": "extra.weight", "int key": 7}[action]] = value
    return payload, f"state key {key} {action}"


def _deep_pickle(seed: bytes, rng):
    """data.pkl with a list nested 1e3..1e6 deep where a metadata value or the state dict was."""
    import torch

    payload = torch.load(__import__("io").BytesIO(seed), weights_only=True)
    target = payload["meta"] if "meta" in payload else payload
    target[pick(rng, sorted(target))] = "__DEEP__"
    depth = 1_000_000 if rng.random() < 0.1 else pick(rng, (1000, 10_000, 100_000))  # 1e6: over 10 s, rarely
    entries = zip_entries(torch_bytes(payload))
    nested = b"]" * depth + b"a" * (depth - 1)
    entries = [(n, d.replace(b"X\x08\x00\x00\x00__DEEP__", nested) if n.endswith("data.pkl") else d)
               for n, d in entries]
    return rezip(entries), f"list nested {depth} deep in data.pkl"


def checkpoint_struct(kind: str, seed: bytes, rng):
    import io

    import torch

    if kind == "payload":
        payload, desc = mutate_payload(torch.load(io.BytesIO(seed), weights_only=True), rng)
        return torch_bytes(payload), desc
    if kind == "deep":
        return _deep_pickle(seed, rng)
    if kind == "zip":
        return _zip_header(seed, rng)
    entries = zip_entries(seed)
    if kind == "pickle":
        index = next(i for i, (name, _) in enumerate(entries) if name.endswith("data.pkl"))
        mutator = pick(rng, (flip, flip, truncate, chunk, ints))
    else:  # storage: one tensor's bytes
        index = pick(rng, [i for i, (name, _) in enumerate(entries) if "/data/" in name])
        mutator = pick(rng, (truncate, truncate, magic, random_bytes))
    name, data = entries[index]
    entries[index] = (name, (mutated := mutator(data, rng))[0])
    return rezip(entries), f"{name.split('/', 1)[1]}: {mutated[1]}"


def _zip_header(seed: bytes, rng):
    fields = {b"PK\x03\x04": (18, 22, 26, 28), b"PK\x01\x02": (20, 24, 28, 30, 42), b"PK\x05\x06": (8, 10, 12, 16)}
    signature = pick(rng, list(fields))
    pos = pick(rng, find_all(seed, signature))
    at = pos + pick(rng, fields[signature])
    width = 2 if signature != b"PK\x05\x06" and at - pos in (26, 28, 30) or at - pos in (8, 10) else 4
    value = pick(rng, INTERESTING) & ((1 << 8 * width) - 1)
    out = bytearray(seed)
    out[at:at + width] = value.to_bytes(width, "little")
    return bytes(out), f"zip header {signature[2:]!r} field {at - pos} = {value}"


ONNX_PATHS = ("/dev/zero", "../../../../etc/hostname", "missing.bin", "/proc/self/mem", "", "case.onnx")


def onnx_proto(kind: str, data: bytes, rng):
    """A graph-level change (node, attribute, initializer, shapes, versions) or the metadata JSON."""
    import onnx

    model = onnx.load_from_string(data)
    graph = model.graph
    if kind == "meta":
        prop = next(p for p in model.metadata_props if p.key == "segdeploy")
        tree, desc = mutate_tree(json.loads(prop.value), rng)
        prop.value = dump_json(tree)
        return model.SerializeToString(), f"metadata JSON {desc}"
    inits = [t for t in graph.initializer if t.raw_data]
    if kind == "external":
        tensor = pick(rng, inits)
        tensor.data_location = onnx.TensorProto.EXTERNAL
        tensor.ClearField("raw_data")
        location, offset, length = pick(rng, ONNX_PATHS), pick(rng, (0, 4096, 2**40)), pick(rng, (4, 2**31, 2**40))
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            tensor.external_data.add(key=key, value=value)
        return model.SerializeToString(), f"initializer {tensor.name} external at {location!r} +{offset} len {length}"
    op = pick(rng, ("op", "drop", "input", "attr", "attr", "dims", "data", "shape", "opset", "ir", "output"))
    node = pick(rng, graph.node)
    if op == "op":
        node.op_type = pick(rng, ("Add", "Conv", "Gather", "Reshape", "Resize", "Loop", "If", "Nope", "", "Einsum"))
    elif op == "drop":
        graph.node.remove(node)
    elif op == "input" and node.input:
        names = [n for other in graph.node for n in other.output] + ["", "missing"]
        node.input[int(rng.integers(len(node.input)))] = pick(rng, names)
    elif op == "attr" and node.attribute:
        _mutate_attribute(pick(rng, node.attribute), rng)
    elif op == "dims" and inits:
        tensor = pick(rng, inits)
        dims = list(tensor.dims)
        tensor.ClearField("dims")
        tensor.dims.extend(pick(rng, (dims * 2, [], [0], [2**31], [-1], dims[::-1], [2**62, 2**62])))
    elif op == "data" and inits:
        tensor = pick(rng, inits)
        tensor.raw_data = tensor.raw_data[:int(rng.integers(len(tensor.raw_data)))] if rng.random() < 0.7 else (
            tensor.raw_data * 2)
    elif op == "shape":
        value = pick(rng, (*graph.input, *graph.output))
        dims = value.type.tensor_type.shape.dim
        if dims:
            pick(rng, dims).dim_value = pick(rng, (0, 1, 2**31, 2**62))
    elif op == "opset":
        model.opset_import[0].version = pick(rng, (1, 7, 99, 0, 2**40))
    elif op == "ir":
        model.ir_version = pick(rng, (0, 1, 3, 99, 2**40))
    elif op == "output":
        graph.output[0].name = pick(rng, ("missing", "", graph.input[0].name))
    return model.SerializeToString(), f"graph {op} ({node.op_type} {node.name[:40]})"


def _mutate_attribute(attribute, rng) -> None:
    import onnx

    if attribute.type == onnx.AttributeProto.INTS:
        values = list(attribute.ints)
        attribute.ClearField("ints")
        attribute.ints.extend(pick(rng, ([0] * len(values), [-1] * len(values), [2**31] * len(values), [],
                                         values + values, [2**62] * len(values))))
    elif attribute.type == onnx.AttributeProto.INT:
        attribute.i = pick(rng, (-1, 0, 2**31, 2**62, -(2**62)))
    elif attribute.type == onnx.AttributeProto.FLOAT:
        attribute.f = pick(rng, (float("nan"), float("inf"), -1.0, 1e38))
    elif attribute.type == onnx.AttributeProto.STRING:
        attribute.s = pick(rng, (b"", b"nope", b"\xff\xfe", b"x" * 10000))
    else:
        attribute.type = pick(rng, (onnx.AttributeProto.INT, onnx.AttributeProto.STRING, 0))

