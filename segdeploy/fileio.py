"""File writing that never leaves half-written artifacts, and content hashes."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from segdeploy.errors import BadInputError


@contextlib.contextmanager
def atomic_output(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s folder; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left as it was
    (old contents or absent). The rename is atomic on POSIX because both paths share
    one folder and so one file system.
    """
    target = Path(target)
    if target.is_dir():
        raise BadInputError(f"cannot write {target}: it is a folder; give a file name")
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise BadInputError(f"cannot write {target}: folder {folder} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise BadInputError(f"cannot write {target}: {exc.strerror}") from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        publish(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish(tmp: Path, target: Path) -> None:
    """Rename the finished ``tmp`` onto ``target`` with the mode a plain ``open()`` would have given it.

    That is 0666 & ~umask for a new file (mkstemp's 0600 would hide the model from a server running as
    another user) and the existing file's mode when ``target`` is replaced.
    """
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~current_umask()
    os.chmod(tmp, mode)
    os.replace(tmp, target)


def current_umask() -> int:
    """The process's umask, read without changing it (os.umask must set one to read it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc (macOS): the classic read-and-restore
    os.umask(mask)
    return mask


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_output(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    atomic_write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike, payload: object) -> None:
    """Write ``payload`` as indented JSON to a file atomically, or to stdout when target is '-'."""
    text = json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    if str(target) == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(target, text)


def _json_default(value: object) -> object:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def require_file(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` as a Path if it is an existing, non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise BadInputError(f"{what} not found: {path}")
    if not path.is_file():
        raise BadInputError(f"{what} is not a regular file: {path}")
    if path.stat().st_size == 0:
        raise BadInputError(f"{what} is empty: {path}")
    return path


NAME_MAX = 255  # bytes in one path component on Linux file systems


def inside_root(root: str | os.PathLike, name: str, what: str) -> Path:
    """``root / name`` for a ``name`` read from an untrusted file: relative, and inside ``root`` also after
    symlinks and '..' are resolved; anything else is BadInputError (no reading outside the data)."""
    root = Path(root)
    relative = Path(name)
    if not name or relative.is_absolute() or ".." in relative.parts:
        raise BadInputError(f"{what} {name!r} is not a relative path inside {root}; refused")
    path = root / relative
    try:
        if any(len(os.fsencode(part)) > NAME_MAX for part in path.parts):  # also: a lone surrogate has no bytes
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        inside = path.resolve().is_relative_to(root.resolve())
    except (ValueError, OSError) as exc:  # NUL bytes, names over NAME_MAX, loops of links
        raise BadInputError(f"{what} {name[:80]!r} is not a usable path under {str(root)[:80]!r}: "
                            f"{exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}") from exc
    if not inside:
        raise BadInputError(f"{what} {name!r} leads outside {root} (to {path.resolve()}); refused")
    return path
