"""The trainer behind ``segdeploy train``: AdamW, warm-up + poly/cosine decay, val mIoU per epoch.

The best checkpoint (by val mIoU) is written as a self-describing checkpoint without
optimizer state; ``<output>.last.pt`` holds everything ``--resume`` needs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segdeploy.bench.metrics import ConfusionMatrix
from segdeploy.data.datasets import SegDataset, open_dataset
from segdeploy.data.preprocess import normalize, postprocess, preprocess
from segdeploy.errors import BadInputError, UsageError
from segdeploy.fileio import require_file, sha256_file
from segdeploy.metadata import ArtifactMeta, Preprocess, new_meta
from segdeploy.models.checkpoint import load_model, load_state_checked, read_checkpoint, save_checkpoint
from segdeploy.models.registry import create_model, model_config
from segdeploy.train.augment import augment
from segdeploy.train.losses import LOSSES, class_weights_from_counts, distillation_loss, segmentation_loss

IGNORE = 255  # internal ignore label during training (dataset labels are remapped to it)


@dataclass(frozen=True)
class TrainConfig:
    data: str
    arch: str
    output: str
    input_size: tuple[int, int] = (240, 320)  # training crop size, also the eval size recorded
    epochs: int = 40
    batch: int = 4
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    schedule: str = "poly"  # or "cosine"
    loss: str = "ce"
    class_weights: bool = True
    split: str = "train"
    val_split: str | None = "val"
    workers: int = 0
    seed: int = 0
    threads: int | None = None
    device: str = "cpu"
    resume: str | None = None
    max_steps_per_epoch: int | None = None  # for quick runs and tests
    teacher: str | None = None  # checkpoint whose softened logits the student also learns from
    kd_weight: float = 0.5  # loss = segmentation loss + kd_weight * distillation loss
    kd_temperature: float = 2.0


@dataclass(frozen=True)
class EpochResult:
    epoch: int
    loss: float
    val_miou: float | None
    seconds: float


@dataclass(frozen=True)
class TrainReport:
    output: str
    best_miou: float | None
    best_epoch: int
    epochs: tuple[EpochResult, ...]
    seconds: float


class _TrainSet(torch.utils.data.Dataset):
    """Decoded samples cached in memory (CamVid train is ~250 MB), augmented per access."""

    def __init__(self, dataset: SegDataset, size: tuple[int, int], pre: Preprocess, seed: int) -> None:
        self.dataset, self.size, self.pre, self.seed = dataset, size, pre, seed
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.epoch = 0
        self.lut = _label_lut(dataset)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if index not in self.cache:
            sample = self.dataset[index]
            self.cache[index] = (sample.image, self.lut[sample.mask])
        image, mask = self.cache[index]
        rng = np.random.default_rng((self.seed, self.epoch, index))
        image, mask = augment(image, mask, self.size, IGNORE, rng)
        return torch.from_numpy(normalize(image[None], self.pre)[0]), torch.from_numpy(mask.astype(np.int64))


def _label_lut(dataset: SegDataset) -> np.ndarray:
    """Map dataset labels to 0..C-1 and everything else (the ignore label) to IGNORE."""
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[: dataset.num_classes] = np.arange(dataset.num_classes)
    return lut


def label_counts(dataset: SegDataset) -> np.ndarray:
    counts = np.zeros(dataset.num_classes, dtype=np.int64)
    for index in range(len(dataset)):
        mask = dataset[index].mask
        counts += np.bincount(mask[mask < dataset.num_classes].ravel(), minlength=dataset.num_classes)
    return counts


def learning_rate(config: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Linear warm-up, then poly (power 0.9) or cosine decay to zero."""
    warmup = max(1, int(config.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, total_steps - warmup)
    if config.schedule == "cosine":
        return config.lr * 0.5 * (1 + math.cos(math.pi * progress))
    return config.lr * (1 - progress) ** 0.9


def evaluate(model: torch.nn.Module, dataset: SegDataset, pre: Preprocess, device: str = "cpu") -> ConfusionMatrix:
    """Val mIoU through the shared preprocessing path, at the original label resolution."""
    matrix = ConfusionMatrix(dataset.num_classes, dataset.ignore_index)
    model.eval()
    with torch.no_grad():
        for index in range(len(dataset)):
            sample = dataset[index]
            batch, placement = preprocess(sample.image, pre)
            logits = model(torch.from_numpy(batch).to(device))[0].float().cpu().numpy()
            matrix.update(postprocess(logits, placement), sample.mask)
    return matrix


class Objective:
    """The training loss: the segmentation loss, plus with a teacher the distillation term.

    The teacher runs once per batch, in eval mode, without gradients. The distillation term is
    weighted by the same class weights as the segmentation loss (see ``distillation_loss``).
    """

    def __init__(self, config: TrainConfig, weights: torch.Tensor | None, teacher: torch.nn.Module | None) -> None:
        self.config, self.weights, self.teacher = config, weights, teacher

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = model(images)
        loss = segmentation_loss(self.config.loss, logits, targets, IGNORE, self.weights)
        if self.teacher is None:
            return loss
        with torch.no_grad():
            teacher_logits = self.teacher(images)
        return loss + self.config.kd_weight * distillation_loss(logits, teacher_logits, targets, IGNORE,
                                                                self.config.kd_temperature, self.weights)


def load_teacher(config: TrainConfig, train_set: SegDataset, student_meta: ArtifactMeta) -> torch.nn.Module:
    """The teacher checkpoint, frozen; its classes and normalisation must be the data's and the student's."""
    teacher, meta = load_model(require_file(config.teacher, "teacher checkpoint"))
    if meta.num_classes != train_set.num_classes or tuple(meta.class_names) != tuple(train_set.class_names):
        raise BadInputError(f"teacher {config.teacher} has {meta.num_classes} classes {list(meta.class_names)[:4]}..., "
                            f"the data has {train_set.num_classes} {list(train_set.class_names)[:4]}...")
    fields = ("channel_order", "pixel_scale", "mean", "std")
    different = [f for f in fields if getattr(meta.preprocess, f) != getattr(student_meta.preprocess, f)]
    if different:
        raise BadInputError(f"teacher {config.teacher} normalises images differently ({', '.join(different)})")
    teacher = teacher.to(config.device).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _validate_config(config: TrainConfig) -> None:
    if config.loss not in LOSSES:
        raise BadInputError(f"unknown loss {config.loss!r}; choose from {', '.join(LOSSES)}")
    if config.epochs < 1 or config.batch < 1:
        raise BadInputError("--epochs and --batch must be >= 1")
    if min(config.input_size) < 1:
        raise BadInputError("--input-size must be positive")
    if config.kd_temperature <= 0 or config.kd_weight < 0:
        raise UsageError("--kd-temperature must be > 0 and --kd-weight >= 0")


def train(config: TrainConfig, on_step: Callable[[dict[str, Any]], None] | None = None) -> TrainReport:
    """Train ``config.arch`` on ``config.data``; writes the best checkpoint to ``config.output``."""
    _validate_config(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    train_set = open_dataset(config.data, config.split)
    if not train_set.has_masks:
        raise BadInputError(f"{config.data} split {config.split} has images without masks")
    val_set = open_dataset(config.data, config.val_split) if config.val_split else None
    pre = Preprocess(eval_size=tuple(config.input_size))
    arch_config = model_config(config.arch, num_classes=train_set.num_classes)
    model = create_model(config.arch, **arch_config).to(config.device)
    meta = new_meta(config.arch, arch_config, train_set.num_classes, class_names=train_set.class_names,
                    palette=train_set.palette or None, preprocess=dataclasses.replace(pre, divisor=model.size_divisor))
    meta = meta.replace(ignore_index=train_set.ignore_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = class_weights_from_counts(label_counts(train_set)).to(config.device) if config.class_weights else None
    objective = Objective(config, weights, load_teacher(config, train_set, meta) if config.teacher else None)
    if config.teacher:
        meta = meta.with_record("distill", teacher=config.teacher, teacher_sha256=sha256_file(config.teacher),
                                kd_weight=config.kd_weight, kd_temperature=config.kd_temperature)
    state = {"epoch": 0, "best_score": float("-inf"), "best_epoch": 0, "history": []}
    if config.resume:
        state = _resume(config, model, optimizer)
    data = _TrainSet(train_set, tuple(config.input_size), meta.preprocess, config.seed)
    loader = torch.utils.data.DataLoader(
        data, batch_size=config.batch, shuffle=True, drop_last=True, num_workers=config.workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    steps_per_epoch = min(len(loader), config.max_steps_per_epoch or len(loader))
    total_steps = steps_per_epoch * config.epochs
    started = time.perf_counter()
    for epoch in range(state["epoch"], config.epochs):
        data.epoch = epoch
        epoch_start, losses = time.perf_counter(), []
        model.train()
        for step, (images, targets) in enumerate(loader):
            if step >= steps_per_epoch:
                break
            global_step = epoch * steps_per_epoch + step
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(config, global_step, total_steps, steps_per_epoch)
            loss = objective(model, images.to(config.device), targets.to(config.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if on_step:
                on_step({"epoch": epoch, "step": step, "steps": steps_per_epoch, "loss": losses[-1]})
        miou = evaluate(model, val_set, meta.preprocess, config.device).miou() if val_set else None
        result = EpochResult(epoch + 1, float(np.mean(losses)), miou, time.perf_counter() - epoch_start)
        state["history"].append(dataclasses.asdict(result))
        if on_step:
            on_step({"epoch_done": result})
        # Best by val mIoU; without a val split, by training loss.
        score = miou if miou is not None else -result.loss
        if score > state["best_score"]:
            state["best_score"], state["best_epoch"] = score, epoch + 1
            _save_best(model, meta, config, state)
        state["epoch"] = epoch + 1
        save_checkpoint(model, _last_path(config.output), meta, optimizer=optimizer.state_dict(),
                        train_state=_plain_state(state), train_config=_plain_config(config))
    return TrainReport(config.output, state["best_score"] if val_set else None, state["best_epoch"],
                       tuple(EpochResult(**h) for h in state["history"]), time.perf_counter() - started)


def _last_path(output: str) -> Path:
    path = Path(output)
    return path.with_name(path.stem + ".last.pt")


def _plain_state(state: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": state["epoch"], "best_score": float(state["best_score"]), "best_epoch": state["best_epoch"],
            "history": state["history"]}


def _plain_config(config: TrainConfig) -> dict[str, Any]:
    return {key: (list(value) if isinstance(value, tuple) else value)
            for key, value in dataclasses.asdict(config).items()}


def _save_best(model: torch.nn.Module, meta: ArtifactMeta, config: TrainConfig, state: dict[str, Any]) -> None:
    record = meta.with_record("train", config=_plain_config(config), epoch=state["best_epoch"],
                              val_miou=state["history"][-1]["val_miou"], history=list(state["history"]),
                              torch=str(torch.__version__))
    save_checkpoint(model, config.output, record)


def _resume(config: TrainConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    payload = read_checkpoint(config.resume)
    meta = ArtifactMeta.from_dict(payload.get("meta"))
    if meta.arch != config.arch:
        raise BadInputError(f"--resume {config.resume} is a {meta.arch} checkpoint, not {config.arch}")
    if "optimizer" not in payload or "train_state" not in payload:
        raise BadInputError(f"--resume {config.resume} has no training state; resume from the .last.pt file")
    load_state_checked(model, payload["state_dict"], meta.arch, Path(config.resume))
    optimizer.load_state_dict(payload["optimizer"])
    return dict(payload["train_state"])
