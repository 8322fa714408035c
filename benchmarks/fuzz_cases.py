"""Fuzz cases for every segdeploy reader of untrusted files: seed files, mutators and the readers' calls.

A case is (reader, index). ``make_case`` seeds its rng from (base seed, reader, index) and writes the case's
files into an empty folder, so the same triple over the same seeds gives the same bytes (``build_seeds``
returns the seeds' sha256; the report records them). Each reader has a schedule of mutation kinds (case
``index`` picks ``kinds[index % len(kinds)]``, so any run of consecutive indices covers every kind) and a
call that runs the reader and raises unless what it returned is valid (``InvalidResult``).
Used by benchmarks/fuzz.py (process pool, report) and tests/test_fuzz.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from fuzz_formats import checkpoint_struct, onnx_proto, torch_bytes
from fuzz_mutators import BYTES, case_rng, image_header, json_tree, pick, toml_tree, video_box, xml_struct

REPO = Path(__file__).resolve().parents[1]
EVAL_SIZE = (32, 48)  # the seed model's eval size: predict stays ~10 ms
FORMATS = {"checkpoint": "m.pt", "state_dict": "sd.pt", "onnx": "m.onnx", "calibration": "calib.json"}


class InvalidResult(Exception):
    """The reader returned normally but what it returned breaks its contract."""



# -- seeds -----------------------------------------------------------------------------------------
def _seed_meta():
    import torch

    from segdeploy.models.checkpoint import load_model

    torch.manual_seed(0)
    model, meta = load_model("unet_tiny", num_classes=5)
    return model, meta.replace(preprocess=dataclasses.replace(meta.preprocess, eval_size=EVAL_SIZE))


def build_seeds(root: str | os.PathLike, onnx_model: str | os.PathLike | None = None) -> dict[str, str]:
    """Write every seed under ``root/seed`` (and the synthetic data set under ``root/data``); their sha256.

    ``onnx_model``: a segdeploy ONNX of unet_tiny with 5 classes to reuse (its eval size is set to EVAL_SIZE);
    without one the checkpoint is exported (about 15 s).
    """

    from segdeploy.artifact_meta import attach_metadata, read_metadata
    from segdeploy.data.calibration_set import build_calibration_set, write_calibration_set
    from segdeploy.data.synthetic import make_scenes, write_synthetic_dataset
    from segdeploy.engine_manifest import EngineManifest, Environment, write_manifest
    from segdeploy.export.config import ExportConfig
    from segdeploy.export.onnx_export import export_onnx
    from segdeploy.export.openvino_ir import export_openvino
    from segdeploy.fileio import sha256_file
    from segdeploy.metadata import default_palette

    root = Path(root)
    seed = root / "seed"
    seed.mkdir(parents=True, exist_ok=True)
    model, meta = _seed_meta()
    (seed / "m.pt").write_bytes(torch_bytes({"format": "segdeploy.checkpoint", "meta": meta.to_dict(),
                                             "state_dict": {k: v.detach() for k, v in model.state_dict().items()}}))
    (seed / "sd.pt").write_bytes(torch_bytes({k: v.detach() for k, v in model.state_dict().items()}))
    if onnx_model is None:
        onnx_model = seed / "m.onnx"
        export_onnx(model, onnx_model, ExportConfig(verify=False), meta)
    import onnx

    proto = onnx.load(str(onnx_model))
    proto.graph.ClearField("value_info")  # its symbolic dim names vary with the hash seed; onnxruntime infers them
    fixed = read_metadata(proto).replace(preprocess=meta.preprocess)
    onnx.save(attach_metadata(proto, fixed), str(seed / "m.onnx"))
    export_openvino(seed / "m.onnx", seed / "m.xml")
    (seed / "engine.plan").write_bytes(np.random.default_rng(0).bytes(4096))
    built = Environment("10.3.0", "12.4", "Fuzz GPU", (8, 6), "linux", "x86_64")
    write_manifest(EngineManifest(meta.to_dict(), built, [{"input": [[1, 3, 32, 48], [1, 3, 32, 48], [2, 3, 64, 96]]}],
                                  "fp16", "0" * 64, sha256_file(seed / "engine.plan"), 1.5, True, "ampere_plus"),
                   seed / "engine.plan")
    _write_images(seed, make_scenes(1, 24, 32, seed=3), default_palette(6))
    for name in ("unet.toml", "unet_small.toml", "swin_seg_nano.toml"):
        shutil.copy(REPO / "export" / name, seed / name)
    write_synthetic_dataset(root / "data", {"train": 3}, size=(24, 32))
    write_calibration_set(build_calibration_set(root / "data", "train", 3, "random", seed=0), seed / "calib.json")
    text = json.loads((seed / "calib.json").read_text())
    (seed / "calib.json").write_text(json.dumps({**text, "created": "2000-01-01"}, indent=2) + "\n")
    files = sorted(p for folder in (seed, root / "data") for p in folder.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): sha256_file(p) for p in files}


def _write_images(seed: Path, scenes, palette) -> None:
    from PIL import Image

    image, mask = scenes[0][0], scenes[1][0]
    cv2.imwrite(str(seed / "rgb.png"), image)
    cv2.imwrite(str(seed / "rgba.png"), cv2.cvtColor(image, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(seed / "gray.png"), cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(seed / "rgb16.png"), image.astype(np.uint16) * 257)
    for suffix in ("jpg", "bmp", "tif", "webp"):
        cv2.imwrite(str(seed / f"rgb.{suffix}"), image)
    paletted = Image.fromarray(mask, mode="L").convert("P")
    paletted.putpalette([c for colour in palette for c in colour])
    paletted.save(seed / "palette.png")
    cv2.imwrite(str(seed / "mask.png"), mask)
    cv2.imwrite(str(seed / "mask.bmp"), mask)
    frames = [np.roll(image, shift, axis=1) for shift in range(0, 20, 4)]
    for name, fourcc in (("clip.mp4", "mp4v"), ("clip.avi", "MJPG")):
        writer = cv2.VideoWriter(str(seed / name), cv2.VideoWriter_fourcc(*fourcc), 10.0, (32, 24))
        for frame in frames:
            writer.write(frame)
        writer.release()


# -- cases and readers --------------------------------------------------------------------------------
@dataclass
class Case:
    reader: str
    index: int
    kind: str
    desc: str
    path: Path  # what the reader is given
    options: dict = field(default_factory=dict)
    out: Path | None = None  # a folder the reader writes into (must stay empty when it fails)


@dataclass
class Context:
    """What a process keeps between cases: the seeds' root, a test image, the video reader's segmenter."""

    root: Path
    image: np.ndarray = field(default_factory=lambda: np.random.default_rng(1).integers(0, 256, (30, 40, 3), np.uint8))
    _segmenter: Any = None

    def segmenter(self):
        if self._segmenter is None:
            from segdeploy.runtime.segmenter import Segmenter

            self._segmenter = Segmenter(self.root / "seed" / "m.onnx", threads=1)
        return self._segmenter


BYTE_KINDS = ("random", "magic", "flip", "flip", "truncate", "chunk", "ints")


def _write(case_dir: Path, name: str, data: bytes) -> Path:
    path = case_dir / name
    path.write_bytes(data)
    return path


def _mutate(kind: str, data: bytes, rng, structured: Callable | None = None):
    return BYTES[kind](data, rng) if kind in BYTES else structured(kind, data, rng)


def _single(seeds: tuple[str, ...], structured: Callable | None = None):
    """make() for readers of one file: a seed (picked by the rng), mutated by ``kind``."""

    def make(root: Path, case_dir: Path, kind: str, rng):
        name = pick(rng, seeds)
        data, desc = _mutate(kind, (root / "seed" / name).read_bytes(), rng, structured)
        return _write(case_dir, "case" + Path(name).suffix, data), f"{name}: {desc}", {}

    return make


def _pair(root: Path, case_dir: Path, kind: str, rng, names: tuple[str, str], structured: Callable):
    """A file pair (main, companion) where ``kind`` = "<target>.<op>" damages one of the two: the structured
    one (IR XML, engine manifest) through ``structured``, the other through the byte mutators or by its absence."""
    target, op = kind.split(".")
    main, companion = ((root / "seed" / name).read_bytes() for name in names)
    desc = f"{names[1].split('.')[-1]} missing"
    if target == "structured":
        main, desc = _mutate(op, main, rng, lambda _kind, data, r: structured(data, r))
    elif op != "missing":
        companion, desc = _mutate(op, companion, rng)
    return main, (None if op == "missing" else companion), f"{target}: {desc}"


def _make_openvino(root: Path, case_dir: Path, kind: str, rng):
    xml, binary, desc = _pair(root, case_dir, kind.replace("xml.", "structured."), rng, ("m.xml", "m.bin"),
                              xml_struct)
    if binary is not None:
        _write(case_dir, "case.bin", binary)
    return _write(case_dir, "case.xml", xml), desc.replace("structured:", "xml:"), {}


def _make_engine(root: Path, case_dir: Path, kind: str, rng):
    manifest, plan, desc = _pair(root, case_dir, kind.replace("manifest.", "structured."), rng,
                                 ("engine.plan.json", "engine.plan"), json_tree)
    if plan is not None:
        _write(case_dir, "case.plan", plan)
    _write(case_dir, "case.plan.json", manifest)
    return case_dir / "case.plan", desc.replace("structured:", "manifest:"), {}


def _make_calibration(root: Path, case_dir: Path, kind: str, rng):
    data, desc = _mutate(kind, (root / "seed" / "calib.json").read_bytes(), rng, lambda _k, d, r: json_tree(d, r))
    explicit = bool(rng.integers(2))
    return _write(case_dir, "calib.json", data), desc + (" (data_root given)" if explicit else ""), {
        "data_root": root / "data" if explicit else None}


CLASSES_TEXTS = (b"", b" \n\t\n", b"one\n", b"\n".join(b"c%d" % i for i in range(256)),
                 b"\n".join(b"c%d" % i for i in range(100_000)), b"a\x00b\nc\n", "é☃😀\n".encode(), b"a\r\nb\r\n",
                 b"\xff\xfe\xfa\n", b"x" * 1_000_000, b"a\na\na\n")


def _make_dataset(root: Path, case_dir: Path, kind: str, rng):
    """A copy of the seed data set with one file's bytes, classes.txt or the layout changed."""
    data = case_dir / "data"
    shutil.copytree(root / "data", data)
    target, op = kind.split(".")
    folder = data / "train" / ("images" if target == "image" else "masks")
    files = sorted(folder.iterdir())
    if target == "classes":
        text = pick(rng, CLASSES_TEXTS) if op == "text" else BYTES[op]((data / "classes.txt").read_bytes(), rng)[0]
        (data / "classes.txt").write_bytes(text)
        return data, f"classes.txt: {len(text)} bytes {text[:30]!r}", {}
    if target == "layout":
        return data, _change_layout(data, rng), {}
    victim = pick(rng, files)
    mutator = image_header if op == "header" else BYTES[op]
    new, desc = mutator(victim.read_bytes(), rng)
    victim.write_bytes(new)
    return data, f"{target} {victim.name}: {desc}", {}


def _change_layout(data: Path, rng) -> str:
    images, masks = sorted((data / "train" / "images").iterdir()), sorted((data / "train" / "masks").iterdir())
    op = pick(rng, ("drop mask", "drop image", "image is a folder", "masks is a file", "empty images",
                    "broken symlink", "symlink to /dev/zero", "fifo", "classes.txt is a folder", "stem mismatch"))
    victim = pick(rng, images)
    if op == "drop mask":
        pick(rng, masks).unlink()
    elif op == "drop image":
        victim.unlink()
    elif op == "image is a folder":
        victim.unlink()
        victim.mkdir()
    elif op == "masks is a file":
        shutil.rmtree(data / "train" / "masks")
        (data / "train" / "masks").write_bytes(b"x")
    elif op == "empty images":
        for image in images:
            image.unlink()
    elif op in ("broken symlink", "symlink to /dev/zero"):
        victim.unlink()
        victim.symlink_to("/nonexistent/x.png" if op == "broken symlink" else "/dev/zero")
    elif op == "fifo":
        victim.unlink()
        os.mkfifo(victim)
    elif op == "classes.txt is a folder":
        (data / "classes.txt").unlink()
        (data / "classes.txt").mkdir()
    else:
        pick(rng, masks).rename(data / "train" / "masks" / "other.png")
    return f"layout: {op} ({victim.name})"


def _make_video(root: Path, case_dir: Path, kind: str, rng):
    name = pick(rng, ("clip.mp4", "clip.avi"))
    data, desc = _mutate(kind, (root / "seed" / name).read_bytes(), rng, lambda _k, d, r: video_box(d, r))
    return _write(case_dir, "case" + Path(name).suffix, data), f"{name}: {desc}", {}


# -- reader calls: (case, context) -> result; InvalidResult when the result breaks the contract -------
def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise InvalidResult(what)


def call_checkpoint(case: Case, ctx: Context):
    from segdeploy.metadata import ArtifactMeta
    from segdeploy.models.checkpoint import load_model

    model, meta = load_model(case.path, **case.options)
    _expect(isinstance(meta, ArtifactMeta) and callable(model), f"load_model returned {type(meta).__name__}")
    return meta


def _predict(ctx: Context, artifact: Path) -> np.ndarray:
    from segdeploy.runtime.segmenter import Segmenter

    with Segmenter(artifact, threads=1) as segmenter:
        mask = segmenter.predict(ctx.image)
        classes = segmenter.meta.num_classes
    _expect(mask.shape == ctx.image.shape[:2] and mask.dtype == np.uint8, f"mask {mask.shape} {mask.dtype}")
    _expect(int(mask.max()) < classes, f"class id {int(mask.max())} >= {classes} classes")
    return mask


def call_onnx(case: Case, ctx: Context):
    from segdeploy.artifact_meta import read_onnx_meta
    from segdeploy.metadata import ArtifactMeta

    _expect(isinstance(read_onnx_meta(case.path), ArtifactMeta), "read_onnx_meta returned no ArtifactMeta")
    return _predict(ctx, case.path)


def call_openvino(case: Case, ctx: Context):
    from segdeploy.artifact_meta import read_openvino_meta
    from segdeploy.metadata import ArtifactMeta

    _expect(isinstance(read_openvino_meta(case.path), ArtifactMeta), "read_openvino_meta returned no ArtifactMeta")
    return _predict(ctx, case.path)


def call_engine(case: Case, ctx: Context):
    """What the TensorRT backend does before deserializing: manifest, metadata, plan hash, compatibility."""
    from segdeploy.engine_manifest import Environment, check_plan_hash, incompatibility, read_manifest
    from segdeploy.metadata import ArtifactMeta

    manifest = read_manifest(case.path)
    meta = manifest.artifact_meta()
    check_plan_hash(manifest, case.path)
    reason = incompatibility(manifest, Environment("10.5.0", "12.6", "Other GPU", (9, 0), "linux", "x86_64"))
    _expect(isinstance(meta, ArtifactMeta), "no ArtifactMeta")
    _expect(reason is None or isinstance(reason, str) and "\n" not in reason, f"incompatibility {reason!r}")
    return meta


def _check_image(image) -> None:
    _expect(isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8
            and min(image.shape[:2]) > 0, f"image {getattr(image, 'shape', None)} {getattr(image, 'dtype', None)}")


def call_image(case: Case, ctx: Context):
    from segdeploy.data.datasets import read_image

    image = read_image(case.path)
    _check_image(image)
    return image.shape


def call_mask(case: Case, ctx: Context):
    from segdeploy.data.datasets import read_mask

    mask = read_mask(case.path)
    _expect(isinstance(mask, np.ndarray) and mask.ndim == 2 and mask.dtype == np.uint8 and mask.size > 0,
            f"mask {getattr(mask, 'shape', None)} {getattr(mask, 'dtype', None)}")
    return mask.shape


def call_video(case: Case, ctx: Context):
    from segdeploy.runtime.predict import predict_files

    report = predict_files(ctx.segmenter(), [case.path], case.out)
    _expect(report.videos == 1 and report.frames >= 1, f"{report.videos} videos, {report.frames} frames")
    _expect(all(Path(p).is_file() for p in report.written), "a written file is missing")
    return report.frames


def call_calibration(case: Case, ctx: Context):
    from segdeploy.data.calibration_set import CalibrationSet, load_calibration_set

    calibration_set, files = load_calibration_set(case.path, case.options["data_root"])
    _expect(isinstance(calibration_set, CalibrationSet) and all(f.is_file() for f in files), "not a verified set")
    return len(files)


def call_dataset(case: Case, ctx: Context):
    from segdeploy.data.datasets import open_dataset

    dataset = open_dataset(case.path, "train")
    _expect(len(dataset) > 0 and dataset.num_classes > 0, f"{len(dataset)} items, {dataset.num_classes} classes")
    for index in range(len(dataset)):
        sample = dataset[index]
        _check_image(sample.image)
        _expect(sample.mask is None or sample.mask.shape == sample.image.shape[:2], "mask size")
    return len(dataset)


def call_recipe(case: Case, ctx: Context):
    from segdeploy.export.recipe import ExportRecipe, load_recipe

    recipe = load_recipe(case.path)
    _expect(isinstance(recipe, ExportRecipe), "not an ExportRecipe")
    return recipe.num_classes


@dataclass(frozen=True)
class Reader:
    kinds: tuple[str, ...]  # the schedule: case index % len(kinds)
    make: Callable  # (root, case_dir, kind, rng) -> (input path, description, call options)
    call: Callable  # (case, context) -> result
    timeout: float = 10.0  # seconds per case before it counts as a hang


CHECKPOINT_KINDS = (*BYTE_KINDS, "pickle", "pickle", "payload", "payload", "payload", "deep", "zip", "storage")
IMAGE_SEEDS = ("rgb.png", "rgba.png", "gray.png", "rgb16.png", "palette.png", "rgb.jpg", "rgb.bmp", "rgb.tif",
               "rgb.webp")
MASK_SEEDS = ("palette.png", "mask.png", "mask.bmp", "rgb.png", "rgb16.png")
HEADER_KINDS = (*BYTE_KINDS, "header", "header", "header")
READERS = {
    "checkpoint": Reader(CHECKPOINT_KINDS, _single(("m.pt",), checkpoint_struct), call_checkpoint),
    "state_dict": Reader(CHECKPOINT_KINDS, _single(("sd.pt",), checkpoint_struct), call_checkpoint),
    "onnx": Reader((*BYTE_KINDS, "proto", "proto", "proto", "proto", "meta", "meta", "external"),
                   _single(("m.onnx",), onnx_proto), call_onnx),
    "openvino": Reader(("xml.random", "xml.magic", "xml.flip", "xml.truncate", "xml.chunk", "xml.struct",
                        "xml.struct", "xml.struct", "xml.struct", "bin.flip", "bin.truncate", "bin.missing",
                        "bin.random", "bin.ints"),
                       _make_openvino, call_openvino),
    "engine": Reader(("manifest.random", "manifest.magic", "manifest.flip", "manifest.truncate", "manifest.chunk",
                      "manifest.tree", "manifest.tree", "manifest.tree", "manifest.tree", "manifest.tree",
                      "plan.flip", "plan.truncate", "plan.missing"), _make_engine, call_engine),
    "image": Reader(HEADER_KINDS, _single(IMAGE_SEEDS, lambda _k, d, r: image_header(d, r)), call_image),
    "mask": Reader(HEADER_KINDS, _single(MASK_SEEDS, lambda _k, d, r: image_header(d, r)), call_mask),
    "video": Reader((*BYTE_KINDS, "box", "box", "box"), _make_video, call_video, timeout=20.0),
    "calibration": Reader(("random", "magic", "flip", "truncate", "chunk", "tree", "tree", "tree", "tree", "tree"),
                          _make_calibration, call_calibration),
    "dataset": Reader(("image.flip", "image.truncate", "image.header", "mask.flip", "mask.truncate", "mask.header",
                       "classes.text", "classes.flip", "layout.x", "image.random", "mask.ints"), _make_dataset,
                      call_dataset),
    "recipe": Reader(("random", "magic", "flip", "truncate", "chunk", "tree", "tree", "tree", "tree", "tree"),
                     _single(("unet.toml", "unet_small.toml", "swin_seg_nano.toml"), lambda _k, d, r: toml_tree(d, r)),
                     call_recipe),
}


def _selftest(root: Path, case_dir: Path, kind: str, rng):
    return _write(case_dir, "case.bin", b""), kind, {}


def _misbehave(case: Case, ctx: Context):
    """The pool's own test: each kind is one way a reader can take its process down."""
    import signal
    import time

    if case.kind == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    if case.kind == "hang":
        time.sleep(3600)
    if case.kind == "memory":
        return np.ones(6 << 30, np.uint8).sum()  # 6 GB: more than the worker's address-space cap leaves
    print("noise", flush=True)
    os.write(2, b"native noise\n")
    raise ValueError("multi\nline")


SELFTEST = {"_selftest": Reader(("segfault", "hang", "memory", "noise"), _selftest, _misbehave, timeout=3.0)}


def make_case(root: str | os.PathLike, reader: str, index: int, base_seed: int, case_dir: Path) -> Case:
    """Write case ``reader:index`` into ``case_dir`` (created empty); same arguments, same bytes."""
    root, spec = Path(root), {**READERS, **SELFTEST}[reader]
    kind = spec.kinds[index % len(spec.kinds)]
    shutil.rmtree(case_dir, ignore_errors=True)
    case_dir.mkdir(parents=True)
    path, desc, options = spec.make(root, case_dir, kind, case_rng(base_seed, reader, index))
    if reader == "state_dict":
        options = {"arch": "unet_tiny", "num_classes": 5}
    return Case(reader, index, kind, desc, path, options, case_dir / "out" if reader == "video" else None)


def seed_case(root: str | os.PathLike, reader: str, case_dir: Path) -> Case:
    """The reader's first seed, unchanged (a sanity check: the reader must accept it)."""
    root = Path(root)
    case = make_case(root, reader, 0, 0, case_dir)
    if reader == "openvino":
        shutil.copy(root / "seed" / "m.xml", case.path)
        shutil.copy(root / "seed" / "m.bin", case.path.with_suffix(".bin"))
    elif reader == "engine":
        shutil.copy(root / "seed" / "engine.plan", case.path)
        shutil.copy(root / "seed" / "engine.plan.json", case_dir / "case.plan.json")
    elif reader == "dataset":
        shutil.rmtree(case.path)
        shutil.copytree(root / "data", case.path)
    else:
        seed = {"image": "rgb.png", "mask": "palette.png", "video": "clip.avi", "recipe": "unet.toml"}.get(
            reader, FORMATS.get(reader))
        case.path.unlink(missing_ok=True)
        case.path = case.path.with_suffix(Path(seed).suffix)
        shutil.copy(root / "seed" / seed, case.path)
        if reader == "calibration":
            case.options = {"data_root": root / "data"}
    case.kind, case.desc = "seed", "unchanged seed"
    return case
