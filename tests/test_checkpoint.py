"""glyphcore.checkpoint: a checkpoint comes back as it was saved; anything else is refused with a
CheckpointError naming the file and the problem, and nothing stored in a file ever runs."""

from __future__ import annotations

import errno
import os
import pickle
from pathlib import Path

import pytest
import torch

from glyphcore.checkpoint import FORMAT, REQUIRED_KEYS, load_checkpoint, save_checkpoint
from glyphcore.errors import CheckpointError
from glyphcore.models import create_model


def _payload(seed: int = 0) -> dict:
    torch.manual_seed(seed)
    model = create_model("lenet", num_classes=4, in_channels=1, input_size=28)
    return {
        "model_name": model.glyph_name,
        "model_args": model.glyph_args,
        "classes": list("ABCD"),
        "frame": None,
        "config": {"model": "lenet", "lr": 1e-3},
        "state_dict": model.state_dict(),
        "epoch": 3,
        "val_loss": 0.25,
        "val_acc": 0.9,
        "rng": {"torch": torch.get_rng_state()},
    }


class _RunsCode:
    """Unpickled unsafely, this creates ``marker``: the test of whether a load ran stored code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_comes_back_as_it_was_saved(tmp_path):
    payload = _payload()
    path = save_checkpoint(payload, tmp_path / "best.pt")
    assert path == tmp_path / "best.pt" and [p.name for p in tmp_path.iterdir()] == ["best.pt"]
    back = load_checkpoint(path)
    assert back["format"] == FORMAT  # filled in
    assert len(back["state_dict_sha256"]) == 64  # filled in: the weights' checksum, verified at load
    assert len(back["content_sha256"]) == 64 and back["unverified"] == []  # every answer-changing part covered
    made = ("state_dict", "rng", "format", "state_dict_sha256", "content_sha256", "unverified")
    assert {k: v for k, v in back.items() if k not in made} == {
        k: v for k, v in payload.items() if k not in ("state_dict", "rng")
    }
    assert back["state_dict"].keys() == payload["state_dict"].keys()
    assert all(torch.equal(back["state_dict"][k], v) for k, v in payload["state_dict"].items())
    assert torch.equal(back["rng"]["torch"], payload["rng"]["torch"])
    # the model is rebuilt from the file alone
    model = create_model(back["model_name"], **back["model_args"])
    model.load_state_dict(back["state_dict"])


def test_saving_again_replaces_the_file_and_a_failed_save_keeps_the_previous_one(tmp_path, monkeypatch):
    path = save_checkpoint(_payload(0), tmp_path / "last.pt")
    save_checkpoint({**_payload(1), "epoch": 4}, path)
    assert load_checkpoint(path)["epoch"] == 4
    real_save = torch.save

    def disk_full(obj, f, *a, **kw):  # half a checkpoint reaches the disk, then the disk is full
        real_save(obj, f, *a, **kw)
        f.truncate(f.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint({**_payload(2), "epoch": 5}, path)
    assert load_checkpoint(path)["epoch"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_a_missing_file_says_how_to_get_one(tmp_path):
    with pytest.raises(CheckpointError, match=r"nope.pt does not exist: train a run first"):
        load_checkpoint(tmp_path / "nope.pt")


def test_a_bare_state_dict_or_another_tools_dict_is_not_a_glyphcore_checkpoint(tmp_path):
    torch.save(_payload()["state_dict"], tmp_path / "bare.pt")
    torch.save({"model": "resnet", "epoch": 3, "weights": torch.zeros(3)}, tmp_path / "foreign.pt")
    torch.save({**_payload(), "format": "someone-else/2"}, tmp_path / "other-format.pt")
    for name in ("bare.pt", "foreign.pt", "other-format.pt"):
        with pytest.raises(CheckpointError, match=rf"{name} is not a glyphcore checkpoint .*bare state_dict"):
            load_checkpoint(tmp_path / name)


def test_a_checkpoint_without_a_required_part_is_incomplete(tmp_path):
    payload = {**_payload(), "format": FORMAT}
    for key in REQUIRED_KEYS[1:]:
        torch.save({k: v for k, v in payload.items() if k != key}, tmp_path / "part.pt")
        with pytest.raises(CheckpointError, match=rf"part.pt lacks {key}: the checkpoint is incomplete"):
            load_checkpoint(tmp_path / "part.pt")


def test_a_truncated_or_non_torch_file_is_refused(tmp_path):
    whole = save_checkpoint(_payload(), tmp_path / "whole.pt").read_bytes()
    for cut in (len(whole) // 2, len(whole) - 30, 100):
        (tmp_path / "cut.pt").write_bytes(whole[:cut])
        with pytest.raises(CheckpointError, match=r"cut.pt is not a (readable )?torch checkpoint.*truncated"):
            load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "notes.pt").write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match=r"notes.pt is not a torch checkpoint \(torch.save writes a zip"):
        load_checkpoint(tmp_path / "notes.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is not a torch checkpoint"):
        load_checkpoint(tmp_path / "empty.pt")


def test_a_checkpoint_that_would_run_code_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "code-ran"
    evil = {**_payload(), "format": FORMAT, "extra": _RunsCode(marker)}
    torch.save(evil, tmp_path / "evil.pt")  # torch's zip format
    with pytest.raises(CheckpointError, match=r"refused to load .*evil.pt: it stores Python objects that would run"):
        load_checkpoint(tmp_path / "evil.pt")
    with open(tmp_path / "evil.pkl", "wb") as f:  # a bare pickle under a .pt name
        pickle.dump(evil, f, protocol=2)
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        load_checkpoint(tmp_path / "evil.pkl")
    assert not marker.exists()
    # The file is as dangerous as it looks: an unsafe load does run it.
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()
