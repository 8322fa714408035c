"""Files that are not checkpoints, shared by the model and CLI tests, with what the refusal must say."""

import pickle
import zipfile

BAD_CHECKPOINTS = {  # kind -> a fragment of the one-line refusal
    "random": "is unrecognised binary data, not a PyTorch checkpoint",
    "text": "is a text file, not a PyTorch checkpoint",
    "empty-zip": "is a zip archive of 0 files that is not a PyTorch checkpoint",
    "pickle-code": "refers to code (posix.system) that loading would run",
    "empty": "is empty",
    "full-model": "is a full pickled model or object (it refers to torch.nn.modules.conv.Conv2d), which is not "
                  "accepted: save model.state_dict() or use segdeploy's checkpoint format",
    "onnx": "is an ONNX model, not a PyTorch checkpoint: pass it where an .onnx file is expected",
    "truncated": "is a damaged zip archive (truncated or corrupt)",
    "flipped": "fails its CRC-32 check",
    # torch's unpickler raises IndexError on a STOP with an empty stack: found by fuzzing (issue 17)
    "pickle-empty-stack": "is a damaged pickle (truncated or corrupt; safe loading failed with IndexError: pop "
                          "from empty list)",
    "list": "holds a list, not a checkpoint dict",
    # zipfile raises NotImplementedError on a member needing "zip version 20.0": found by fuzzing (issue 17)
    "zip-version": "is a damaged zip archive (truncated or corrupt)",
}
BAD_CHECKPOINT_KINDS = tuple(BAD_CHECKPOINTS)
SIDE_EFFECT_FILE = "pwned-by-checkpoint"


class CodePayload:
    """Unpickling this would run a shell command that creates SIDE_EFFECT_FILE in the cwd."""

    def __reduce__(self):
        import os

        return (os.system, (f"touch {SIDE_EFFECT_FILE}",))


def write_bad_checkpoint(path, kind):
    import torch

    if kind == "random":
        path.write_bytes(bytes(range(256)) * 8)
    elif kind == "text":
        path.write_text("just some text\n")
    elif kind == "empty-zip":
        zipfile.ZipFile(path, "w").close()
    elif kind == "pickle-code":
        path.write_bytes(pickle.dumps({"state_dict": CodePayload()}))
    elif kind == "full-model":
        torch.save(torch.nn.Conv2d(1, 1, 1), path)
    elif kind == "onnx":
        _write_onnx(path)
    elif kind in ("truncated", "flipped"):
        torch.save({"weight": torch.arange(4096, dtype=torch.float32)}, path)
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            del data[len(data) // 2:]
        else:
            data[len(data) // 2] ^= 0xFF  # inside the tensor's bytes: torch's own reader would load it
        path.write_bytes(bytes(data))
    elif kind == "pickle-empty-stack":
        path.write_bytes(b"\x80\x02.")
    elif kind == "list":
        torch.save([torch.zeros(2)], path)
    elif kind == "zip-version":
        torch.save({"weight": torch.zeros(4)}, path)
        data = bytearray(path.read_bytes())
        central = data.index(b"PK\x01\x02")  # the first central directory entry
        data[central + 6:central + 8] = (200).to_bytes(2, "little")  # "version needed to extract": 20.0
        path.write_bytes(bytes(data))
    else:
        path.write_bytes(b"")
    return path


def _write_onnx(path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, producer_name="pytorch"), path)
