"""The training loop, in process, on tiny synthetic data (CPU, one thread, seconds each)."""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from shapes_data import shapes_set

from glyphcore import runs
from glyphcore.checkpoint import load_checkpoint
from glyphcore.errors import CheckpointError, ConfigError
from glyphcore.train import (
    Callback,
    EarlyStopping,
    SaveBest,
    best_log_line,
    fit,
    lr_at,
    make_config,
)

TIMING = ("seconds", "images_per_s", "time")


@pytest.fixture(scope="module")
def data():
    torch.set_num_threads(1)
    return shapes_set(200, seed=0), shapes_set(60, seed=1, split="valid")


def cfg(**kw):
    base = dict(model="lenet", epochs=2, batch_size=20, lr=2e-3, log_every=5, threads=1, data="shapes")
    return make_config(**{**base, **kw})


def metrics_of(history):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in history]


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class CancelAtStep(Callback):
    """What SIGTERM does (the handler sets the same flag), at a chosen step."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step(self, state) -> None:
        if state.step == self.step:
            state.cancel_requested = True


@pytest.mark.slow
def test_two_epochs_lower_the_loss_and_write_the_run_folder(tiny_glyphs, tmp_path):
    """The report's recipe (seed_cnn, SiLU, Adam, batch 50) on a tiny glyphs-52, at a higher lr."""
    from glyphcore.data import load_dataset

    run = tmp_path / "run"
    config = make_config(epochs=2, lr=2e-3, threads=1, log_every=5)
    result = fit(config, run, name="first try")
    assert result.state == "done" and result.epochs_run == 2
    h = result.history
    assert h[1]["train_loss"] < h[0]["train_loss"] and h[1]["val_loss"] < h[0]["val_loss"]
    assert {p.name for p in run.iterdir()} >= {"config.json", "status.json", "metrics.jsonl", "best.pt", "last.pt"}

    config_json = json.loads((run / "config.json").read_text())
    assert config_json["model"] == "seed_cnn" and config_json["lr"] == 2e-3 and config_json["name"] == "first try"
    assert config_json["dataset"]["id"] and config_json["dataset"]["hash"] and config_json["versions"]["torch"]
    assert config_json["dataset"]["counts"] == {"train": 520, "val": 208}
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["epoch"] == 2 and status["best_epoch"] == result.best_epoch
    assert status["params"] == result.params == 702_948  # the report's count

    events = read_lines(run / "metrics.jsonl")
    assert events[-1]["event"] == "end" and events[-1]["state"] == "done"
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds", "images_per_s", "time"):
        assert all(key in e for e in epochs)
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == [1, 5, 10, 11, 15, 20, 22]  # the first step, every log_every=5 steps, each epoch's end (11)
    logs = [e["message"] for e in events if e["event"] == "log"]
    assert best_log_line(math.inf, h[0]["val_loss"]) in logs

    # best.pt rebuilds the model from the file alone and gives the recorded accuracy.
    best = load_checkpoint(run / "best.pt")
    assert best["model_name"] == "seed_cnn" and len(best["classes"]) == 52 and best["frame"]["size"] == 100
    assert best["epoch"] == result.best_epoch and best["val_loss"] == pytest.approx(result.best_val_loss)
    from glyphcore.models import create_model

    model = create_model(best["model_name"], **best["model_args"])
    model.load_state_dict(best["state_dict"])
    model.eval()
    valid = load_dataset("glyphs-52", "valid")
    with torch.no_grad():
        logits = model(torch.from_numpy(np.array(valid.images)).float() / 255)
    acc = (logits.argmax(1).numpy() == valid.labels).mean()
    # (training validated under bf16 autocast where the CPU runs it natively: a few images may differ)
    assert acc == pytest.approx(best["val_acc"], abs=0.02)
    last = load_checkpoint(run / "last.pt")
    assert last["epoch"] == 2 and last["step"] == 22 and "optimizer" in last and "rng" in last


def test_same_config_and_seed_give_the_same_metrics(data):
    config = cfg(augment="light", dropout=0.2)
    a = fit(config, None, train_set=data[0], val_set=data[1])
    b = fit(config, None, train_set=data[0], val_set=data[1])
    assert metrics_of(a.history) == metrics_of(b.history)
    c = fit(cfg(augment="light", dropout=0.2, seed=7), None, train_set=data[0], val_set=data[1])
    assert metrics_of(c.history) != metrics_of(a.history)


@pytest.mark.parametrize("cancel_step", [7, 10], ids=["mid-epoch", "epoch-end"])
def test_cancelled_run_resumes_exactly_like_an_uninterrupted_one(data, tmp_path, cancel_step):
    config = cfg(epochs=3, augment="light", dropout=0.2)
    straight = fit(config, None, train_set=data[0], val_set=data[1])
    run = tmp_path / "run"
    first = fit(config, run, train_set=data[0], val_set=data[1], callbacks=[CancelAtStep(cancel_step)])
    assert first.state == "cancelled"
    assert json.loads((run / "status.json").read_text())["state"] == "cancelled"
    last = load_checkpoint(run / "last.pt")
    assert last["step"] == cancel_step
    second = fit(config, run, train_set=data[0], val_set=data[1], resume=True)
    assert second.state == "done"
    assert metrics_of(second.history) == metrics_of(straight.history)
    events = read_lines(run / "metrics.jsonl")
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3]
    steps = [e["step"] for e in events if e["event"] == "step"]
    assert steps == sorted(set(steps))  # no step twice
    assert [e["state"] for e in events if e["event"] == "end"] == ["done"]


class ScriptedState:
    """The three things SaveBest and EarlyStopping use, without a model: driven by a loss script."""

    def __init__(self) -> None:
        self.best_val_loss = math.inf
        self.lines: list[str] = []
        self.saved: list[int] = []
        self.stop: str | None = None

    def log(self, message: str) -> None:
        self.lines.append(message)

    def save_best(self, record: dict) -> None:
        self.best_val_loss = record["val_loss"]
        self.saved.append(record["epoch"])

    def request_stop(self, reason: str, message: str) -> None:
        self.stop = reason


def drive(callbacks, losses):
    """Epochs numbered from 1 with these validation losses, until a callback asks to stop."""
    state, run = ScriptedState(), []
    for epoch, loss in enumerate(losses, start=1):
        run.append(epoch)
        for cb in callbacks:
            cb.on_epoch_end(state, {"epoch": epoch, "val_loss": loss, "val_acc": 0.5})
        if state.stop:
            break
    return state, run


def test_save_best_logs_the_report_line_and_saves_on_strict_improvement():
    state, _ = drive([SaveBest()], [0.5, 0.088288, 0.09, 0.072012, 0.072012])
    assert state.saved == [1, 2, 4]
    assert state.lines == [
        "Validation loss decreased (inf --> 0.500000). Saving model ...",
        "Validation loss decreased (0.500000 --> 0.088288). Saving model ...",
        "Validation loss decreased (0.088288 --> 0.072012). Saving model ...",
    ]


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    # fastai's [6, 5, 5, 5, 5, 5], patience 3 -> "epoch 4" counting from 0: five epochs run.
    state, run = drive([EarlyStopping(patience=3)], [6, 5, 5, 5, 5, 5])
    assert state.stop == "early_stop" and run == [1, 2, 3, 4, 5]
    state, run = drive([EarlyStopping(patience=3)], [6, 5, 4, 3, 2, 1])
    assert state.stop is None and run == [1, 2, 3, 4, 5, 6]
    state, run = drive([EarlyStopping(patience=1)], [3, 4])
    assert state.stop == "early_stop" and run == [1, 2]


def test_best_weights_are_restored_at_the_end(data, tmp_path):
    result = fit(cfg(epochs=3, lr=0.05, optimizer="sgd"), tmp_path / "r", train_set=data[0], val_set=data[1])
    best = load_checkpoint(tmp_path / "r" / "best.pt")["state_dict"]
    for k, v in result.model.state_dict().items():
        assert torch.equal(v.cpu(), best[k])


def test_a_nan_loss_ends_the_run_as_diverged_with_a_hint(data, tmp_path):
    result = fit(cfg(optimizer="sgd", lr=1e6), tmp_path / "r", train_set=data[0], val_set=data[1])
    assert result.state == "diverged"
    assert "lower it" in result.message.lower() and "--lr 100000" in result.message
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["state"] == "diverged" and "--lr" in status["message"]
    end = read_lines(tmp_path / "r" / "metrics.jsonl")[-1]
    assert end["event"] == "end" and end["state"] == "diverged"


def test_time_budget_cuts_the_epoch_validates_it_and_stops(data):
    result = fit(cfg(epochs=5, time_budget_min=1e-6), None, train_set=data[0], val_set=data[1])
    assert result.state == "done" and "time budget" in result.message
    assert len(result.history) == 1 and result.history[0]["partial"] is True
    assert result.history[0]["step"] < 10


def test_param_budget_refuses_to_start(data, tmp_path):
    with pytest.raises(ConfigError, match=r"43,960 trainable parameters, above the budget of 40,000"):
        fit(cfg(param_budget=40_000), tmp_path / "r", train_set=data[0], val_set=data[1])
    status = json.loads((tmp_path / "r" / "status.json").read_text())
    assert status["state"] == "failed" and "budget" in status["message"]
    assert not (tmp_path / "r" / "metrics.jsonl").exists()


def test_unknown_model_or_activation_lists_the_valid_ones(data):
    with pytest.raises(ConfigError, match="seed_cnn") as e:
        fit(cfg(model="resnet9000"), None, train_set=data[0], val_set=data[1])
    assert "resnet9000" in str(e.value) and "lenet" in str(e.value)
    with pytest.raises(ConfigError, match="silu") as e:
        fit(cfg(activation="swishy"), None, train_set=data[0], val_set=data[1])
    assert "relu" in str(e.value)


def test_image_size_a_model_cannot_take_is_refused(data):
    small = [dataclasses.replace(d, images=np.ascontiguousarray(d.images[:, :, :12, :12])) for d in data]
    with pytest.raises(ConfigError, match=r"seed_cnn cannot take 12x12 images: it needs at least 20x20"):
        fit(cfg(model="seed_cnn"), None, train_set=small[0], val_set=small[1])


class _RunsCode:
    """A pickle that would create a file when unpickled, if anything unpickled it unsafely."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_checkpoint_is_refused_without_running_its_code(data, tmp_path):
    run = tmp_path / "run"
    fit(cfg(epochs=1), run, train_set=data[0], val_set=data[1])
    marker = tmp_path / "pwned"
    payload = {
        "format": "glyphcore.checkpoint/1",
        "model_name": "lenet",
        "model_args": {},
        "classes": [],
        "state_dict": {},
        "evil": _RunsCode(marker),
    }
    with open(run / "last.pt", "wb") as f:  # a bare pickle, in the place of the resume point
        pickle.dump(payload, f, protocol=2)
    with pytest.raises(CheckpointError, match="refused|not a torch checkpoint"):
        fit(cfg(epochs=2), run, train_set=data[0], val_set=data[1], resume=True)
    torch.save(payload, run / "evil.pt")  # the same, in torch's zip format
    with pytest.raises(CheckpointError, match="refused"):
        fit(cfg(epochs=1, init_from=str(run / "evil.pt")), None, train_set=data[0], val_set=data[1])
    assert not marker.exists()


def test_a_full_disk_while_saving_leaves_the_previous_checkpoint_valid(data, tmp_path, monkeypatch):
    run = tmp_path / "run"
    fit(cfg(epochs=1), run, train_set=data[0], val_set=data[1])
    before = (run / "last.pt").read_bytes()
    real_save = torch.save

    def disk_full(obj, f, *a, **kw):  # write half a checkpoint, then fail as a full disk does
        real_save(obj, f, *a, **kw)
        f.truncate(f.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError, match=r"disk full \(No space left"):
        fit(cfg(epochs=2), run, train_set=data[0], val_set=data[1], resume=True)
    monkeypatch.setattr(torch, "save", real_save)
    assert (run / "last.pt").read_bytes() == before
    assert load_checkpoint(run / "last.pt")["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and "disk full" in status["message"]
    # ... and the run resumes from it once there is room again.
    assert fit(cfg(epochs=2), run, train_set=data[0], val_set=data[1], resume=True).epochs_run == 2


def test_a_slow_disk_keeps_last_pt_within_one_epoch_of_the_metrics(data, tmp_path, monkeypatch):
    """The checkpoints are written in the background; a disk slower than an epoch must not let
    last.pt fall behind: when epoch N is recorded, last.pt holds at least epoch N - 1 (a kill then
    loses at most the epoch just recorded and the one running)."""
    import time

    from glyphcore.runfolder import store
    from glyphcore.train import state as train_state

    real_save, real_append = train_state.save_checkpoint, store.MetricsLog.append
    seen = []

    def slow_save(payload, path):
        time.sleep(0.3)
        real_save(payload, path)

    def append(self, *records):
        for r in records:
            if r.get("event") == "epoch":
                last = tmp_path / "run" / "last.pt"
                seen.append((r["epoch"], load_checkpoint(last)["epoch"] if last.is_file() else 0))
        real_append(self, *records)

    monkeypatch.setattr(train_state, "save_checkpoint", slow_save)
    monkeypatch.setattr(store.MetricsLog, "append", append)
    fit(cfg(epochs=4), tmp_path / "run", train_set=data[0], val_set=data[1])
    assert [epoch for epoch, _ in seen] == [1, 2, 3, 4]
    assert all(saved >= epoch - 1 for epoch, saved in seen), seen
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 4


def test_fine_tuning_starts_from_a_runs_weights(data, tmp_path):
    fit(cfg(epochs=1), tmp_path / "base", train_set=data[0], val_set=data[1])

    class Start(Callback):
        def on_fit_start(self, state) -> None:
            self.weights = {k: v.detach().cpu().clone() for k, v in state.model.state_dict().items()}

    start = Start()
    result = fit(
        cfg(epochs=1, init_from=str(tmp_path / "base")), None, train_set=data[0], val_set=data[1], callbacks=[start]
    )
    base = load_checkpoint(tmp_path / "base" / "best.pt")["state_dict"]
    assert all(torch.equal(start.weights[k], base[k]) for k in base)
    assert result.history[0]["val_loss"] < load_checkpoint(tmp_path / "base" / "best.pt")["val_loss"]


def test_learning_rate_schedules():
    assert lr_at("none", 1e-3, 500, 1000) == 1e-3
    assert lr_at("cosine", 1e-3, 0, 1000) == pytest.approx(1e-3)
    assert lr_at("cosine", 1e-3, 500, 1000) == pytest.approx(5e-4)
    assert lr_at("cosine", 1e-3, 1000, 1000) == pytest.approx(0, abs=1e-12)
    one = [lr_at("onecycle", 4e-3, s, 1000) for s in range(1000)]
    assert one[0] == pytest.approx(4e-3 / 25) and max(one) == pytest.approx(4e-3)
    assert one.index(max(one)) == 250 and one[-1] < 1e-6


def test_a_failure_while_status_json_is_written_leaves_the_previous_one(tmp_path):
    """json.dump writes a dict in pieces; a value it cannot encode fails after the first pieces are
    written. A plain open() would leave a truncated status.json; the atomic write keeps the old one."""
    runs.write_status(tmp_path, {"state": "running", "epoch": 3})
    before = (tmp_path / "status.json").read_bytes()
    with pytest.raises(TypeError, match="not JSON serializable"):
        runs.write_status(tmp_path, {"state": "done", "epoch": 4, "zz_not_json": object()})
    assert (tmp_path / "status.json").read_bytes() == before
    assert runs.read_json(tmp_path / "status.json")["epoch"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp file left behind


def test_images_per_s_is_in_status_json_from_the_first_logged_steps(data, tmp_path):
    seen = []

    class ReadStatus(Callback):  # after the run-folder writer: status.json as the app reads it then
        def on_log(self, state, records) -> None:
            if state.epoch == 0:  # the first epoch has not ended yet
                seen.append(json.loads((tmp_path / "run" / runs.STATUS_FILE).read_text())["images_per_s"])

    fit(cfg(epochs=1, log_every=2), tmp_path / "run", train_set=data[0], val_set=data[1], callbacks=[ReadStatus()])
    assert seen and all(isinstance(v, float) and v > 0 for v in seen)
