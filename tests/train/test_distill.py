"""Knowledge distillation: the loss, the frozen teacher, and a small student-beats-scratch check."""

import math

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from segdeploy.cli.app import app
from segdeploy.errors import BadInputError
from segdeploy.models.checkpoint import load_model
from segdeploy.train.losses import distillation_loss
from segdeploy.train.trainer import Objective, TrainConfig, train_model


def test_distillation_loss_by_hand():
    student = torch.tensor([[[[0.0]], [[1.0]]]])  # N=1, C=2, H=W=1
    teacher = torch.tensor([[[[1.0]], [[0.0]]]])
    target = torch.zeros((1, 1, 1), dtype=torch.long)
    temperature = 2.0
    p = [math.exp(0.5) / (math.exp(0.5) + 1), 1 / (math.exp(0.5) + 1)]  # teacher softened
    q = [1 / (1 + math.exp(0.5)), math.exp(0.5) / (1 + math.exp(0.5))]  # student softened
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * temperature**2
    assert distillation_loss(student, teacher, target, 255, temperature).item() == pytest.approx(expected, rel=1e-6)


def test_zero_when_equal_and_ignore_pixels_do_not_count():
    logits = torch.randn(2, 5, 4, 6)
    target = torch.randint(0, 5, (2, 4, 6))
    assert distillation_loss(logits, logits.clone(), target, 255, 3.0).item() == pytest.approx(0, abs=1e-7)
    other = torch.randn(2, 5, 4, 6)
    ignored = target.clone()
    ignored[:, :2] = 255
    changed = other.clone()
    changed[:, :, :2] += 100  # only on ignored pixels
    assert distillation_loss(logits, other, ignored, 255, 2.0).item() == pytest.approx(
        distillation_loss(logits, changed, ignored, 255, 2.0).item(), rel=1e-6)


def test_class_weights_weight_pixels_by_their_label():
    student, teacher = torch.randn(1, 3, 1, 2), torch.randn(1, 3, 1, 2)
    target = torch.tensor([[[0, 2]]])
    per_pixel = [distillation_loss(student[..., i:i + 1], teacher[..., i:i + 1], target[..., i:i + 1], 255, 2.0)
                 for i in range(2)]
    weight = torch.tensor([1.0, 5.0, 3.0])
    expected = (1.0 * per_pixel[0] + 3.0 * per_pixel[1]) / (1.0 + 3.0)
    assert distillation_loss(student, teacher, target, 255, 2.0, weight).item() == pytest.approx(expected.item())
    assert distillation_loss(student, teacher, target, 255, 2.0, torch.ones(3)).item() == pytest.approx(
        distillation_loss(student, teacher, target, 255, 2.0).item())


class _CountingTeacher(torch.nn.Module):
    def __init__(self, classes):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes, 1)
        self.calls = 0

    def forward(self, images):
        self.calls += 1
        return self.conv(images)


def test_teacher_runs_once_per_batch_without_gradients():
    teacher = _CountingTeacher(3).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    student = torch.nn.Conv2d(3, 3, 3, padding=1)
    objective = Objective(TrainConfig(data="", arch="unet_tiny", output="", teacher="t.pt"), None, teacher)
    loss = objective(student, torch.randn(2, 3, 8, 8), torch.randint(0, 3, (2, 8, 8)))
    loss.backward()
    assert teacher.calls == 1 and all(p.grad is None for p in teacher.parameters())
    assert all(p.grad is not None for p in student.parameters())


def test_student_records_its_teacher(trained_checkpoint, scenes, tmp_path):
    teacher = trained_checkpoint("swin_seg_tiny")
    train_model(TrainConfig(data=str(scenes), arch="unet_tiny", output=str(tmp_path / "kd.pt"), input_size=(64, 80),
                      epochs=1, batch=4, seed=0, val_split=None, teacher=str(teacher), max_steps_per_epoch=2))
    record = next(r for r in load_model(tmp_path / "kd.pt")[1].history if r["stage"] == "distill")
    assert record["teacher"] == str(teacher) and len(record["teacher_sha256"]) == 64 and record["kd_weight"] == 0.5


def test_teacher_errors(trained_checkpoint, scenes, tmp_path):
    from segdeploy.models.checkpoint import save_checkpoint

    model, meta = load_model("unet_tiny", num_classes=3)
    save_checkpoint(model, tmp_path / "three.pt", meta)
    common = dict(data=str(scenes), arch="unet_tiny", output=str(tmp_path / "s.pt"), epochs=1, val_split=None,
                  input_size=(64, 80))
    with pytest.raises(BadInputError, match="3 classes"):
        train_model(TrainConfig(teacher=str(tmp_path / "three.pt"), **common))
    (tmp_path / "junk.pt").write_bytes(np.arange(100, dtype=np.uint8).tobytes())
    with pytest.raises(BadInputError, match="junk.pt"):
        train_model(TrainConfig(teacher=str(tmp_path / "junk.pt"), **common))
    with pytest.raises(BadInputError, match="not found"):
        train_model(TrainConfig(teacher="missing_teacher", **common))
    result = CliRunner().invoke(app, ["train", "--data", str(scenes), "--arch", "unet_tiny", "--teacher",
                                      str(tmp_path / "three.pt"), "--kd-temperature", "0"])
    assert result.exit_code == 3 and "kd-temperature" in result.stderr  # parses, but invalid: bad input
