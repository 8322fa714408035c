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
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch

from segdeploy.artifact_meta import read_checkpoint
from segdeploy.data.datasets import SegDataset, open_dataset
from segdeploy.data.preprocess import normalize, postprocess, preprocess
from segdeploy.errors import BadInputError
from segdeploy.fileio import require_file, sha256_file
from segdeploy.metadata import ArtifactMeta, Preprocess, new_meta
from segdeploy.metrics import ConfusionMatrix
from segdeploy.models.checkpoint import load_model, load_state_checked, save_checkpoint
from segdeploy.models.registry import create_model, model_config
from segdeploy.train.augment import augment
from segdeploy.train.config import EpochResult, Schedule, StepEvent, TrainConfig, TrainEvent, TrainReport
from segdeploy.train.losses import class_weights_from_counts, distillation_loss, segmentation_loss

IGNORE = 255  # internal ignore label during training (dataset labels are remapped to it)


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
    if config.schedule == Schedule.COSINE:
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


@dataclass
class _Run:
    """Everything one training run holds between epochs."""

    model: torch.nn.Module
    meta: ArtifactMeta
    optimizer: torch.optim.Optimizer
    objective: Objective
    data: _TrainSet
    loader: torch.utils.data.DataLoader
    val_set: SegDataset | None
    steps_per_epoch: int
    state: dict[str, Any]


def train_model(config: TrainConfig, on_step: Callable[[TrainEvent], None] | None = None) -> TrainReport:
    """Train ``config.arch`` on ``config.data``; writes the best checkpoint to ``config.output``.

    Resumes from ``config.resume``; keeps ``<output stem>.last.pt`` (with optimizer state) after
    every epoch and the best epoch (val mIoU, else training loss) at ``config.output``.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    run = _prepare(config)
    started = time.perf_counter()
    for epoch in range(run.state["epoch"], config.epochs):
        result = _train_epoch(run, config, epoch, on_step or (lambda event: None))
        if on_step:
            on_step(result)
        _finish_epoch(run, config, result)
    return TrainReport(config.output, run.state["best_score"] if run.val_set else None, run.state["best_epoch"],
                       tuple(EpochResult(**h) for h in run.state["history"]), time.perf_counter() - started)


def _prepare(config: TrainConfig) -> _Run:
    """Datasets, model, metadata, optimizer, objective and loader; the state of a resumed run."""
    train_set = open_dataset(config.data, config.split)
    if not train_set.has_masks:
        raise BadInputError(f"{config.data} split {config.split} has images without masks")
    val_set = open_dataset(config.data, config.val_split) if config.val_split else None
    arch_config = model_config(config.arch, num_classes=train_set.num_classes)
    model = create_model(config.arch, **arch_config).to(config.device)
    pre = Preprocess(eval_size=tuple(config.input_size), divisor=model.size_divisor)
    meta = new_meta(config.arch, arch_config, train_set.num_classes, class_names=train_set.class_names,
                    palette=train_set.palette or None, preprocess=pre).replace(ignore_index=train_set.ignore_index)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    weights = class_weights_from_counts(label_counts(train_set)).to(config.device) if config.class_weights else None
    objective = Objective(config, weights, load_teacher(config, train_set, meta) if config.teacher else None)
    if config.teacher:
        meta = meta.with_record("distill", teacher=config.teacher, teacher_sha256=sha256_file(config.teacher),
                                kd_weight=config.kd_weight, kd_temperature=config.kd_temperature)
    state = _resume(config, model, optimizer) if config.resume else {
        "epoch": 0, "best_score": float("-inf"), "best_epoch": 0, "history": []}
    data = _TrainSet(train_set, tuple(config.input_size), meta.preprocess, config.seed)
    loader = torch.utils.data.DataLoader(
        data, batch_size=config.batch, shuffle=True, drop_last=True, num_workers=config.workers,
        generator=torch.Generator().manual_seed(config.seed),
    )
    steps = min(len(loader), config.max_steps_per_epoch or len(loader))
    return _Run(model, meta, optimizer, objective, data, loader, val_set, steps, state)


def _train_epoch(run: _Run, config: TrainConfig, epoch: int, on_step: Callable[[TrainEvent], None]) -> EpochResult:
    """One epoch of optimizer steps, then the val mIoU."""
    run.data.epoch = epoch
    started, losses = time.perf_counter(), []
    run.model.train()
    total_steps = run.steps_per_epoch * config.epochs
    for step, (images, targets) in enumerate(run.loader):
        if step >= run.steps_per_epoch:
            break
        for group in run.optimizer.param_groups:
            group["lr"] = learning_rate(config, epoch * run.steps_per_epoch + step, total_steps, run.steps_per_epoch)
        loss = run.objective(run.model, images.to(config.device), targets.to(config.device))
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        losses.append(loss.item())
        on_step(StepEvent(epoch, step, run.steps_per_epoch, losses[-1]))
    miou = evaluate(run.model, run.val_set, run.meta.preprocess, config.device).miou() if run.val_set else None
    return EpochResult(epoch + 1, float(np.mean(losses)), miou, time.perf_counter() - started)


def _finish_epoch(run: _Run, config: TrainConfig, result: EpochResult) -> None:
    """Record the epoch, keep the best checkpoint and write the resumable last one."""
    state = run.state
    state["history"].append(dataclasses.asdict(result))
    # Best by val mIoU; without a val split, by training loss.
    score = result.val_miou if result.val_miou is not None else -result.loss
    if score > state["best_score"]:
        state["best_score"], state["best_epoch"] = score, result.epoch
        _save_best(run.model, run.meta, config, state)
    state["epoch"] = result.epoch
    save_checkpoint(run.model, _last_path(config.output), run.meta, optimizer=run.optimizer.state_dict(),
                    train_state=_plain_state(state), train_config=_plain_config(config))


def _last_path(output: str) -> Path:
    path = Path(output)
    return path.with_name(path.stem + ".last.pt")


def _plain_state(state: dict[str, Any]) -> dict[str, Any]:
    return {"epoch": state["epoch"], "best_score": float(state["best_score"]), "best_epoch": state["best_epoch"],
            "history": state["history"]}


def _plain_config(config: TrainConfig) -> dict[str, Any]:
    """The config as plain types: checkpoints are read with weights_only, which refuses Enum objects."""
    return {key: (list(value) if isinstance(value, tuple) else value.value if isinstance(value, Enum) else value)
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
