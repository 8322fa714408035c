import pytest
import torch

from segdeploy.artifact_meta import read_checkpoint
from segdeploy.errors import BadInputError
from segdeploy.models import create_model
from segdeploy.models.checkpoint import load_model, save_checkpoint
from tests.bad_files import BAD_CHECKPOINT_KINDS, BAD_CHECKPOINTS, SIDE_EFFECT_FILE, write_bad_checkpoint


def test_checkpoint_round_trip_restores_weights_and_metadata(tmp_path):
    model, meta = load_model("unet_tiny", num_classes=3)
    path = save_checkpoint(model, tmp_path / "m.pt", meta, epoch=4)
    loaded, loaded_meta = load_model(path)
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
    assert loaded_meta.arch == "unet_tiny" and loaded_meta.num_classes == 3
    assert loaded_meta.source["path"] == str(path) and len(loaded_meta.source["sha256"]) == 64
    assert read_checkpoint(path)["epoch"] == 4
    assert not loaded.training


def test_plain_state_dict_needs_arch_and_classes(tmp_path):
    model = create_model("unet_tiny", num_classes=3)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(BadInputError, match="--arch and --num-classes"):
        load_model(tmp_path / "plain.pt")
    loaded, meta = load_model(tmp_path / "plain.pt", arch="unet_tiny", num_classes=3)
    assert torch.equal(loaded.head.weight, model.head.weight) and meta.num_classes == 3


def test_state_dict_of_another_architecture_names_the_keys(tmp_path):
    torch.save(create_model("unet_tiny", num_classes=3).state_dict(), tmp_path / "plain.pt")
    expected = r"does not fit swin_seg_tiny: missing \d+ \(decoder.*unexpected \d+ \(down"
    with pytest.raises(BadInputError, match=expected):
        load_model(tmp_path / "plain.pt", arch="swin_seg_tiny", num_classes=3)
    with pytest.raises(BadInputError, match="shape mismatch 2 .*head"):
        load_model(tmp_path / "plain.pt", arch="unet_tiny", num_classes=4)


@pytest.mark.parametrize("kind", BAD_CHECKPOINT_KINDS)
def test_files_that_are_not_checkpoints_are_refused_and_nothing_runs(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    path = write_bad_checkpoint(tmp_path / "bad.pt", kind)
    with pytest.raises(BadInputError) as refused:
        load_model(path)
    assert BAD_CHECKPOINTS[kind] in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / SIDE_EFFECT_FILE).exists()


def test_unknown_names_and_missing_files():
    with pytest.raises(BadInputError, match="unknown architecture"):
        load_model("not_a_model")
    with pytest.raises(BadInputError, match="not found"):
        load_model("missing/model.pt")
    with pytest.raises(BadInputError, match="num-classes"):
        load_model("unet_tiny", num_classes=0)


@pytest.mark.parametrize("state, message", [
    ({0: torch.zeros(1)}, "is not a segdeploy checkpoint or a state dict"),  # int keys: _shorten raised TypeError
    (None, "dtype mismatch"),  # complex weights: load_state_dict cast them with only a warning
], ids=["int-keys", "complex"])
def test_state_dicts_found_by_fuzzing(tmp_path, state, message):
    if state is None:
        model, _ = load_model("unet_tiny", num_classes=3)
        state = {key: value.to(torch.complex64) if value.is_floating_point() else value
                 for key, value in model.state_dict().items()}
    torch.save(state, tmp_path / "s.pt")
    with pytest.raises(BadInputError, match=message):
        load_model(tmp_path / "s.pt", arch="unet_tiny", num_classes=3)


def test_a_checkpoint_config_that_does_not_build_is_bad_input(tmp_path):
    # Found by fuzzing: depth "x" reached UNet's constructor as a TypeError (exit 70).
    from segdeploy.artifact_meta import read_checkpoint

    model, meta = load_model("unet_tiny", num_classes=3)
    save_checkpoint(model, tmp_path / "m.pt", meta)
    for key, value, message in (("depth", "x", "option depth must be int, not str"),
                                ("depth", 0, "does not build a unet_tiny: depth and base_channels must be >= 1")):
        payload = read_checkpoint(tmp_path / "m.pt")
        payload["meta"]["config"][key] = value
        torch.save(payload, tmp_path / "bad.pt")
        with pytest.raises(BadInputError, match=message):
            load_model(tmp_path / "bad.pt")
