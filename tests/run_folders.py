"""Run folders as a training process leaves them, written through glyphcore.runs, for page tests
and benches that need runs on disk without training (``from run_folders import write_run``); and
waiting for a real run process (``wait_for``, ``wait_until_ended``)."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from glyphcore import runs
from glyphcore.train.config import make_config

__all__ = ["wait_for", "wait_until_ended", "write_run"]


TIME_BASE = 1_700_000_000.0  # 2023-11-14 UTC: small ``started`` values count from here


def write_run(
    runs_dir: Path,
    run_id: str,
    *,
    state: str = "done",
    epochs: int = 3,
    epochs_done: int | None = None,
    steps_per_epoch: int = 10,
    val_accs: list[float] | None = None,
    started: float | None = None,
    pid: int | None = None,
    step: int = 0,
    device: str = "cpu",
    params: int = 702_948,
    **config: object,
) -> Path:
    """Write a run folder as a training process would have left it.

    Args:
        runs_dir: the runs folder (GLYPH_RUNS_DIR).
        run_id: folder name.
        state: status.json state.
        epochs: planned epochs; epochs_done: finished ones (default: all when done, else 1).
        steps_per_epoch: step events per epoch (one per step, losses falling).
        val_accs: validation accuracy per finished epoch (default rising from 0.5).
        started: Unix start time (orders the lists; default now). A small number is seconds after
            ``TIME_BASE`` (status.json times before 2000 read as damage, so tests order runs by offsets).
        pid: the training process (for running runs).
        step: steps done in the epoch in progress (running runs); status.json gets the global step.
        config: TrainConfig overrides (model, activation, lr, ...).
    """
    cfg = make_config("report", epochs=epochs, **config)
    done = epochs_done if epochs_done is not None else (epochs if state == "done" else 1)
    accs = val_accs or [0.5 + 0.4 * (e + 1) / epochs for e in range(done)]
    started = time.time() if started is None else started + (TIME_BASE if started < TIME_BASE else 0.0)
    run_dir = runs_dir / run_id
    run_dir.mkdir(parents=True)
    runs.write_json_atomic(
        run_dir / runs.CONFIG_FILE, {**asdict(cfg), "run_id": run_id, "name": None, "created": started}
    )
    log = runs.MetricsLog(run_dir)
    best, t = _log_epochs(log, accs[:done], steps_per_epoch, cfg.lr, started)
    live = state in ("running", "queued")
    if live and step:
        for s in range(1, step + 1):
            log.append({"event": "step", "epoch": done + 1, "step": done * steps_per_epoch + s, "loss": 1.0, "time": t})
    if not live:
        log.append({"event": "end", "state": state, "time": t})
    log.close()
    progress = {
        "epoch": done,
        "epochs": epochs,
        "step": done * steps_per_epoch + step,
        "steps_per_epoch": steps_per_epoch,
    }
    status = {"state": state, "pid": pid, "device": device, "started": started, "ended": None if live else t}
    status |= progress | best | {"params": params, "wall_seconds": t - started, "images_per_s": 500.0, "message": ""}
    runs.write_status(run_dir, status)
    return run_dir


def _log_epochs(
    log: runs.MetricsLog, accs: list[float], steps_per_epoch: int, lr: float, t: float
) -> tuple[dict, float]:
    """Log one finished epoch per entry of ``accs`` as training does (its steps, its epoch event, and the
    "Saving model" line whenever the validation loss falls); (status.json's best_* fields, the last time)."""
    best_loss: float | None = None
    best_epoch: int | None = None
    for e in range(1, len(accs) + 1):
        for s in range(1, steps_per_epoch + 1):  # "step" is the global optimizer step, as in glyphcore.train
            t += 0.1
            loss = 3.0 / (e + s / steps_per_epoch)
            log.append({"event": "step", "epoch": e, "step": (e - 1) * steps_per_epoch + s, "loss": loss, "time": t})
        val_loss = 2.0 / (e + 1)
        epoch = {"event": "epoch", "epoch": e, "step": e * steps_per_epoch, "train_loss": 2.2 / (e + 1)}
        epoch |= {"train_acc": accs[e - 1] + 0.02, "val_loss": val_loss, "val_acc": accs[e - 1], "lr": lr}
        log.append(epoch | {"seconds": 1.0, "images_per_s": 500.0, "time": t})
        if best_loss is None or val_loss < best_loss:
            msg = f"Validation loss decreased ({best_loss or float('inf'):.6f} --> {val_loss:.6f}). Saving model ..."
            log.append({"event": "log", "message": msg, "time": t})
            best_loss, best_epoch = val_loss, e
    best_acc = accs[best_epoch - 1] if best_epoch else None
    return {"best_epoch": best_epoch, "best_val_loss": best_loss, "best_val_acc": best_acc}, t


def wait_for(predicate, timeout: float = 120.0, every: float = 0.02):
    """Poll ``predicate`` until it returns something true; that value. AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def wait_until_ended(run_id: str, timeout: float = 240.0) -> dict:
    """The run's status.json once it is no longer queued, starting or running."""
    try:
        return wait_for(lambda: (s := runs.read_status(run_id))["state"] not in runs.ACTIVE_STATES and s, timeout, 0.2)
    except AssertionError:
        raise AssertionError(f"run {run_id} still {runs.read_status(run_id)['state']} after {timeout} s") from None
