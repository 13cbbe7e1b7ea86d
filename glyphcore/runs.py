"""Run folders: one folder per training run under ``paths.runs_dir()``.

    <runs_dir>/<run_id>/
      config.json     the full TrainConfig, data set id and hash, glyphcore/torch versions
      status.json     state, pid, device, started/ended, epoch, best epoch/val loss/acc, params, ...
      metrics.jsonl   append-only, one JSON object per line: {"event": "step"|"epoch"|"log"|"end", ...}
      best.pt         saved when val loss improves; last.pt every epoch (the resume point)
      eval/           evaluation results (confusion matrix, per-class metrics, predictions)
"""

from __future__ import annotations

from pathlib import Path

from glyphcore import paths
from glyphcore.errors import RunError

# One source of truth for the names inside a run folder.
CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
METRICS_FILE = "metrics.jsonl"
BEST_CKPT = "best.pt"
LAST_CKPT = "last.pt"
EVAL_DIR = "eval"

STATES = ("queued", "running", "done", "failed", "cancelled", "diverged", "crashed")


def resolve_run(ref: str | Path) -> Path:
    """Turn a run reference into its folder: a run id, a path to a run folder, or ``starter``.

    Raises:
        RunError: nothing by that name, or the folder is not a run (no config.json/status.json).
    """
    ref_s = str(ref)
    if ref_s == "starter":
        candidate = paths.starter_dir()
    else:
        p = Path(ref_s)
        candidate = p if (p.is_dir() or "/" in ref_s or ref_s.startswith(".")) else paths.runs_dir() / ref_s
    if not candidate.is_dir():
        raise RunError(
            f"no run {ref_s!r}: {candidate} is not a folder. List runs with `python -m glyphcore runs list`"
        )
    if not ((candidate / CONFIG_FILE).is_file() or (candidate / STATUS_FILE).is_file()):
        raise RunError(f"{candidate} is not a run folder: it has no {CONFIG_FILE} or {STATUS_FILE}")
    return candidate
