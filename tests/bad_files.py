"""Files that are not checkpoints, shared by the model and CLI tests."""

import pickle
import zipfile

BAD_CHECKPOINT_KINDS = ("random", "text", "empty-zip", "pickle-code", "empty")
SIDE_EFFECT_FILE = "pwned-by-checkpoint"


class CodePayload:
    """Unpickling this would run a shell command that creates SIDE_EFFECT_FILE in the cwd."""

    def __reduce__(self):
        import os

        return (os.system, (f"touch {SIDE_EFFECT_FILE}",))


def write_bad_checkpoint(path, kind):
    if kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "text":
        path.write_text("just some text\n")
    elif kind == "empty-zip":
        zipfile.ZipFile(path, "w").close()
    elif kind == "pickle-code":
        path.write_bytes(pickle.dumps({"state_dict": CodePayload()}))
    else:
        path.write_bytes(b"")
    return path
