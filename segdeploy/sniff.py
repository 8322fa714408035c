"""What an untrusted file looks like, from its first bytes (torch-free).

Readers use it to say what a refused file *is* ("an ONNX model", "a text file") instead of
repeating a parsing library's complaint, and to tell a damaged artifact from a foreign one.
"""

from __future__ import annotations

import os
import re
import zipfile

HEAD_BYTES = 4096

_MAGIC = (  # (prefix, what the file looks like)
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a Keras .h5 model?)"),
    (b"\x1f\x8b", "a gzip file"),
    (b"%PDF", "a PDF document"),
    (b"GGUF", "a GGUF model file"),
)


def head(path: str | os.PathLike, size: int = HEAD_BYTES) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def describe(path: str | os.PathLike) -> str:
    """A short noun phrase for what ``path`` holds: 'a zip archive of 3 files ...', 'an ONNX model', ...

    Only formats segdeploy can name from a few bytes; 'unrecognised binary data' otherwise.
    """
    looks = describe_head(head(path))
    return describe_zip(path) if looks == "a zip archive" else looks


def describe_head(data: bytes) -> str:
    """``describe`` from a file's first bytes alone (a zip is just 'a zip archive')."""
    for prefix, what in _MAGIC:
        if data.startswith(prefix):
            return what
    if data[4:8] == b"ftyp":
        return "an MP4 video" if data[8:10] != b"qt" else "a QuickTime video"
    if data.startswith(b"RIFF") and data[8:12] == b"AVI ":
        return "an AVI video"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return "a WebP image"
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "a Matroska/WebM video"
    if data.startswith(b"PK\x03\x04") or data.startswith(b"PK\x05\x06"):
        return "a zip archive"
    if data[:1] == b"\x80" and len(data) > 1 and 2 <= data[1] <= 5:
        return "a pickle"
    if looks_like_safetensors(data):
        return "a safetensors file"
    if looks_like_onnx(data):
        return "an ONNX model"
    if _is_text(data[:HEAD_BYTES]):
        return "a text file"
    return "unrecognised binary data"


def damaged(looks: str) -> str:
    """A ``describe`` phrase for a file of that kind that is broken: 'an MP4 video' -> 'a damaged MP4 video'."""
    return "a damaged " + looks.split(" ", 1)[1]


def describe_zip(path: str | os.PathLike) -> str:
    """'a PyTorch checkpoint archive', 'a damaged zip archive' or 'a zip archive of N files (not ...)'."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return "a damaged zip archive"  # NotImplementedError: a version or compression zipfile does not know
    if any(name.endswith("data.pkl") for name in names):
        return "a PyTorch checkpoint archive"
    if any(name.endswith("saved_model.pb") for name in names):
        return "a zipped TensorFlow SavedModel"
    return f"a zip archive of {len(names)} file{'s' if len(names) != 1 else ''} that is not a PyTorch checkpoint"


def looks_like_safetensors(data: bytes) -> bool:
    """safetensors: an 8-byte little-endian header length, then a JSON object."""
    return len(data) > 10 and data[8:10] in (b'{"', b"{'") and int.from_bytes(data[:8], "little") < 100_000_000


def looks_like_onnx(data: bytes) -> bool:
    """An ONNX ModelProto opens with field 1 (ir_version: a small varint, 3 to 14 so far) followed by one of
    its length-delimited fields (producer name, domain, graph, opset import ...)."""
    return len(data) > 3 and data[0] == 0x08 and 3 <= data[1] <= 30 and data[2] in _MODEL_PROTO_TAGS


_MODEL_PROTO_TAGS = frozenset({0x12, 0x1A, 0x22, 0x32, 0x3A, 0x42, 0x72, 0x7A})


def _is_text(data: bytes) -> bool:
    if not data:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # the head may end inside a multi-byte character
        try:
            text = data[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(char.isprintable() or char in "\r\n\t" for char in text)
    return printable >= 0.95 * len(text)


_CODE_GLOBALS = re.compile(r"^(posix|nt|os|subprocess|builtins|__builtin__|sys|shutil|socket|runpy|pty|importlib)\.")


def pickle_globals(path: str | os.PathLike, limit: int = 1 << 20) -> list[str]:
    """The dotted names the pickle at ``path`` refers to (GLOBAL / STACK_GLOBAL), read statically with
    pickletools from its first ``limit`` bytes, never unpickled; as far as the opcodes could be parsed."""
    import pickletools

    names, strings = [], []
    try:
        for opcode, argument, _ in pickletools.genops(head(path, limit)):
            if opcode.name == "GLOBAL":
                names.append(str(argument).replace(" ", "."))
            elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                names.append(f"{strings[-2]}.{strings[-1]}")
            elif isinstance(argument, str):
                strings.append(argument)
    except Exception:  # a malformed pickle: the names found so far are the answer
        pass
    return names


def unsafe_global(message: str) -> str | None:
    """The dotted name in a torch weights-only refusal ('Unsupported global: GLOBAL torch.nn...Conv2d'), if any."""
    match = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return match.group(1) if match else None


def runs_code(global_name: str) -> bool:
    """Whether a pickled reference to ``global_name`` is a way to run commands (os.system, eval, ...),
    as opposed to a class of a pickled object (a full model, a numpy array)."""
    return bool(_CODE_GLOBALS.match(global_name))

