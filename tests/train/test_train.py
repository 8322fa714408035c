import numpy as np
import pytest
import torch

from segdeploy.artifact_meta import read_checkpoint
from segdeploy.data.synthetic import write_synthetic_dataset
from segdeploy.errors import BadInputError
from segdeploy.models.checkpoint import load_model
from segdeploy.train.losses import class_weights_from_counts, dice_loss, segmentation_loss
from segdeploy.train.trainer import IGNORE, TrainConfig, learning_rate, train_model


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("syn"), {"train": 8, "val": 4}, size=(48, 64))


def _config(root, out, **changes):
    base = dict(data=str(root), arch="unet_tiny", output=str(out), input_size=(48, 64), epochs=4, batch=4,
                lr=1e-2, max_steps_per_epoch=2, seed=0, threads=1)
    return TrainConfig(**(base | changes))


def test_a_few_steps_lower_the_loss_and_keep_the_best(synthetic_root, tmp_path):
    report = train_model(_config(synthetic_root, tmp_path / "m.pt"))
    losses = [epoch.loss for epoch in report.epochs]
    assert losses[-1] < losses[0]
    assert all(0 <= e.val_miou <= 1 for e in report.epochs)
    model, meta = load_model(tmp_path / "m.pt")
    assert meta.class_names[0] == "sky" and meta.preprocess.eval_size == (48, 64)
    assert meta.history[-1]["stage"] == "train" and meta.history[-1]["epoch"] == report.best_epoch
    assert "optimizer" not in read_checkpoint(tmp_path / "m.pt")  # the best file stays small
    assert "optimizer" in read_checkpoint(tmp_path / "m.last.pt")


def test_resume_continues_where_it_stopped(synthetic_root, tmp_path):
    train_model(_config(synthetic_root, tmp_path / "m.pt", epochs=2))
    first = read_checkpoint(tmp_path / "m.last.pt")["train_state"]
    report = train_model(_config(synthetic_root, tmp_path / "m.pt", epochs=3, resume=str(tmp_path / "m.last.pt")))
    assert first["epoch"] == 2
    assert [e.epoch for e in report.epochs] == [1, 2, 3]  # history carried over, one new epoch


def test_resume_from_another_architecture_is_refused(synthetic_root, tmp_path):
    train_model(_config(synthetic_root, tmp_path / "m.pt", epochs=1, val_split=None))
    with pytest.raises(BadInputError, match="unet_tiny checkpoint, not swin_seg_tiny"):
        train_model(_config(synthetic_root, tmp_path / "s.pt", arch="swin_seg_tiny",
                            resume=str(tmp_path / "m.last.pt")))


def test_bad_training_options(synthetic_root, tmp_path):
    with pytest.raises(BadInputError, match=r"--loss must be one of ce, dice, focal, ce\+dice"):
        train_model(_config(synthetic_root, tmp_path / "m.pt", loss="hinge"))
    with pytest.raises(BadInputError, match="split 'nope' not found"):
        train_model(_config(synthetic_root, tmp_path / "m.pt", split="nope"))


def test_warmup_then_decay():
    config = TrainConfig(data="", arch="", output="", lr=1.0, warmup_epochs=1)
    rates = [learning_rate(config, step, 100, 10) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:])) and rates[-1] < 0.05


@pytest.mark.parametrize("name", ["ce", "dice", "focal", "ce+dice"])
def test_losses_ignore_the_ignore_label(name):
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5)
    target = torch.randint(0, 3, (2, 4, 5))
    noisy = target.clone()
    noisy[:, 0] = IGNORE
    changed = logits.clone()
    changed[:, :, 0] = 100 * torch.randn(2, 3, 5)  # wild logits only where ignored
    assert segmentation_loss(name, logits, noisy, IGNORE) == pytest.approx(
        segmentation_loss(name, changed, noisy, IGNORE).item(), rel=1e-5)


def test_dice_is_zero_for_a_perfect_prediction():
    target = torch.tensor([[[0, 1], [2, 1]]])
    logits = 50 * torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float()
    assert dice_loss(logits, target, IGNORE).item() == pytest.approx(0.0, abs=1e-4)


def test_rare_classes_weigh_more():
    weights = class_weights_from_counts(np.array([1000, 10, 100]))
    assert weights[1] > weights[2] > weights[0] and weights.mean().item() == pytest.approx(1.0)
