"""A process killed in the middle of writing an artifact leaves the old file (or nothing)."""

import signal
import subprocess
import sys

import pytest

WRITER = """
import sys, time
from segdeploy.fileio import atomic_output
with atomic_output(sys.argv[1]) as tmp:
    with open(tmp, "wb") as handle:
        handle.write(b"new" * 1000)
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)  # killed here, half-way through the artifact
        handle.write(b"rest")
"""


@pytest.mark.parametrize("existing", [True, False])
def test_sigkill_mid_write_keeps_the_old_file(tmp_path, existing):
    target = tmp_path / "model.onnx"
    if existing:
        target.write_bytes(b"old complete artifact")
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "writing"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    if existing:
        assert target.read_bytes() == b"old complete artifact"
    else:
        assert not target.exists()
    # the temporary file of the killed writer is the only trace: hidden, and never the target's name
    assert all(p.name.startswith(".model.onnx.") and p.name.endswith(".tmp") for p in tmp_path.iterdir()
               if p != target)

