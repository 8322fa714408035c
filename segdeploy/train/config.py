"""Configuration, events and report of the training stage (torch-free, so the CLI can offer its choices)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from segdeploy.errors import BadInputError, check_range, convert_choices
from segdeploy.limits import MAX_THREADS, SEED_MAX


class Loss(StrEnum):
    CE = "ce"
    DICE = "dice"
    FOCAL = "focal"
    CE_DICE = "ce+dice"


class Schedule(StrEnum):
    """Learning-rate decay after the linear warm-up."""

    POLY = "poly"  # power 0.9
    COSINE = "cosine"


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
    schedule: Schedule = Schedule.POLY
    loss: Loss = Loss.CE
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

    def __post_init__(self) -> None:
        convert_choices(self, {"schedule": (Schedule, "--schedule"), "loss": (Loss, "--loss")})
        check_range(self.epochs, "--epochs", low=1)
        check_range(self.batch, "--batch", low=1)
        check_range(min(self.input_size), "each side of --input-size", low=1)
        check_range(self.lr, "--lr", low=0.0)
        check_range(self.kd_weight, "--kd-weight", low=0.0)
        check_range(self.workers, "--workers", low=0)
        check_range(self.seed, "--seed", low=0, high=SEED_MAX)
        if self.threads is not None:
            check_range(self.threads, "--threads", low=1, high=MAX_THREADS)
        if self.max_steps_per_epoch is not None:
            check_range(self.max_steps_per_epoch, "--max-steps", low=1)
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise BadInputError(f"--device must be cpu, cuda or cuda:N, got {self.device!r}")
        if not self.kd_temperature > 0:  # also NaN
            raise BadInputError(f"--kd-temperature must be > 0, got {self.kd_temperature}")


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


@dataclass(frozen=True)
class StepEvent:
    """One optimizer step done: ``step`` of ``steps`` in 0-based ``epoch``."""

    epoch: int
    step: int
    steps: int
    loss: float


TrainEvent = StepEvent | EpochResult  # what ``train``'s callback hears: each step, then each finished epoch
