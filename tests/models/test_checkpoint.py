"""Checkpoint formats, variant detection, and every way a checkpoint can be wrong."""

import collections
import pickle

import pytest
import torch

from reid_trt.core.errors import CheckpointError
from reid_trt.models import VARIANTS, build_model
from reid_trt.models.checkpoint import detect_variant, load_model, load_state_dict


class NotATensor:  # a class of the test module: safe loading must refuse to unpickle it
    pass


@pytest.fixture(scope="module")
def x0_25_state():
    return build_model("osnet_x0_25", num_classes=751).state_dict()


def save(path, obj, legacy=False):
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.mark.parametrize("wrap", ["bare", "training", "module", "model_key", "legacy"])
def test_checkpoint_formats(tmp_path, x0_25_state, wrap):
    state = x0_25_state
    if wrap == "training":  # what torchreid's save_checkpoint writes
        adam = torch.optim.Adam(build_model("osnet_x0_25").parameters())
        obj = {"state_dict": state, "epoch": 60, "rank1": 0.7, "optimizer": adam.state_dict()}
    elif wrap == "module":  # saved from nn.DataParallel
        obj = collections.OrderedDict((f"module.{k}", v) for k, v in state.items())
    elif wrap == "model_key":
        obj = {"model": state}
    else:
        obj = state
    path = save(tmp_path / "w.pth", obj, legacy=wrap == "legacy")
    loaded = load_model(path)
    assert loaded.variant == "osnet_x0_25"
    got = loaded.model.state_dict()
    assert all(torch.equal(got[k], state[k]) for k in got)


@pytest.mark.parametrize("classes", [1, 751, 4101])
def test_any_classifier_size_is_dropped(tmp_path, classes):
    state = build_model("osnet_ain_x0_25", num_classes=classes).state_dict()
    loaded = load_model(save(tmp_path / "w.pth", state))
    assert loaded.model.classifier is None
    assert not any(k.startswith("classifier") for k in loaded.model.state_dict())


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_detects_every_variant_with_evidence(variant):
    detection = detect_variant(build_model(variant, num_classes=10).state_dict())
    assert detection.variant == variant
    width = variant.rsplit("_", 2)[-2] + "_" + variant.rsplit("_", 1)[-1]
    assert any(width in line for line in detection.evidence)


def test_real_checkpoints_detected(real_weights):
    for path in real_weights.values():
        detection = detect_variant(load_state_dict(path))
        assert detection.variant == "osnet_x0_25"
        assert "conv1.conv.weight (16, 3, 7, 7)" in detection.evidence


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_model(tmp_path / "nope.pth")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupt_files(tmp_path, x0_25_state, damage):
    path = save(tmp_path / "w.pth", x0_25_state)
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"\x00not a checkpoint" * 9,
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(path)


def test_other_architecture(tmp_path):
    resnet_like = {"conv1.weight": torch.zeros(64, 3, 7, 7), "bn1.weight": torch.zeros(64),
                   "layer1.0.conv1.weight": torch.zeros(64, 64, 1, 1)}
    with pytest.raises(CheckpointError, match="not an OSNet state dict.*conv1.weight"):
        load_model(save(tmp_path / "resnet.pth", resnet_like))


def test_wrong_variant_names_keys_and_detected_variant(tmp_path, x0_25_state):
    path = save(tmp_path / "w.pth", x0_25_state)
    with pytest.raises(CheckpointError) as e:
        load_model(path, variant="osnet_ain_x0_25")
    message = str(e.value)
    assert "missing" in message and "unexpected" in message
    assert "looks like osnet_x0_25" in message and "\n" not in message
    with pytest.raises(CheckpointError, match=r"\d+ mis-shaped: conv1\.bn\.bias \(16,\) vs \(64,\)"):
        load_model(path, variant="osnet_x1_0")


def test_missing_keys_never_give_random_weights(tmp_path, x0_25_state):
    partial = {k: v for k, v in x0_25_state.items() if not k.startswith("conv4.1")}
    with pytest.raises(CheckpointError, match=r"missing \d+ keys: conv4\.1\."):
        load_model(save(tmp_path / "w.pth", partial))


def test_a_damaged_checkpoint_of_the_right_variant_names_the_file_not_the_variant(
        tmp_path, x0_25_state):
    """Issue 30: six tensors missing or one mis-shaped in an osnet_x0_25 checkpoint is a damaged
    file; the message names the tensors and says to restore it, not to pick a variant."""
    missing = dict(list(x0_25_state.items())[:-6])
    reshaped = dict(x0_25_state)
    reshaped["conv3.0.conv1.conv.weight"] = reshaped["conv3.0.conv1.conv.weight"][:, :-1]
    for state, names in ((missing, "missing 6 keys"), (reshaped, "1 mis-shaped: conv3.0.conv1")):
        with pytest.raises(CheckpointError) as e:
            load_model(save(tmp_path / "w.pth", state), variant="osnet_x0_25")
        message = str(e.value)
        assert names in message and "damaged, cut short or edited; restore it" in message
        assert "auto or" not in message  # no variant to pick: it is the right one
        with pytest.raises(CheckpointError, match="damaged"):  # auto detects the same variant
            load_model(save(tmp_path / "w.pth", state))


def test_pickled_objects_need_trust(tmp_path, x0_25_state):
    path = save(tmp_path / "w.pth", {"state_dict": x0_25_state, "args": NotATensor()})
    with pytest.raises(CheckpointError, match="pass trust_checkpoint"):
        load_model(path)
    assert load_model(path, trust=True).variant == "osnet_x0_25"


def test_no_tensors(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no tensors"):
        load_model(path)


def test_raw_pickle_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(pickle.dumps(NotATensor()))
    with pytest.raises(CheckpointError):
        load_model(path)
