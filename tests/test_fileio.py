"""Atomic writes: the modes a plain open() gives, under two umasks; nothing left behind on failure."""

import os
import stat

import pytest

from segdeploy.fileio import atomic_output, atomic_write_bytes, current_umask


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it after."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_get_0666_minus_umask(umask, tmp_path, mask, mode):
    umask(mask)
    assert current_umask() == mask
    target = tmp_path / "model.onnx"
    atomic_write_bytes(target, b"weights")
    assert stat.S_IMODE(target.stat().st_mode) == mode  # mkstemp's 0600 would hide it from other users
    assert target.read_bytes() == b"weights"


def test_a_replaced_file_keeps_its_mode(umask, tmp_path):
    umask(0o022)
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")
    target.chmod(0o640)
    atomic_write_bytes(target, b"new")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_bytes() == b"new"


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "model.onnx"
    with pytest.raises(RuntimeError), atomic_output(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, message", [
    ("../../etc/passwd", "is not a relative path inside"),
    ("a\ud800.png", "is not a usable path"),  # a lone surrogate from JSON: found by fuzzing
    ("x" * 300 + ".png", "File name too long"),  # ENAMETOOLONG from is_file(): found by fuzzing
    ("a\x00.png", "embedded null byte"),
], ids=["dot-dot", "surrogate", "too-long", "nul"])
def test_names_from_untrusted_files_stay_inside_and_usable(tmp_path, name, message):
    from segdeploy.errors import BadInputError
    from segdeploy.fileio import inside_root

    with pytest.raises(BadInputError, match=message):
        inside_root(tmp_path, name, "calibration image")
