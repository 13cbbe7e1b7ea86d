"""Runs: the processes that train run folders, sweeps and comparisons.

The run folder's files themselves (config.json, status.json, metrics.jsonl, the trainer lock, the
list of runs) are ``glyphcore.runfolder``, below both this package and ``glyphcore.train``, which
writes them; this package re-exports its public names, so ``runs.list_runs`` etc. read as before.

- ``process``: launch a run as a detached process, cancel (or stop, whichever applies), resume, delete;
- ``monitor``: what the files mean while a run trains: progress, ETA, speed, the elapsed clock (ticking
  between status writes), a growing metrics tail;
- ``sweep``: the same settings once per value of a setting (crossed with N seeds), together or queued;
- ``compare``: table rows, config differences, one-factor ablations, report cards;
- ``groups``: runs equal but for the seed as one group (mean, sd, n), arms against a baseline paired
  by seed with a verdict, mean curves with a band, cost points;
- ``rounds``: until decided, one more seed per round until every comparison has a verdict;
- ``listing``: the rows of the runs lists, a group of seed replicates as one row;
- ``recipes``: launch a report's recipe (its sweep for the ablations) and find the runs it made.

``from glyphcore import runs`` gives the run folder's names and the process functions (``runs.launch``,
``runs.list_runs``, ...); ``sweep``, ``compare``, ``groups``, ``rounds`` and ``listing`` are imported by name.
Nothing here imports torch at import time.
"""

from __future__ import annotations

from glyphcore.runfolder.store import (
    ACTIVE_STATES,
    BEST_CKPT,
    CONFIG_FILE,
    EVAL_DIR,
    LAST_CKPT,
    LOG_FILE,
    METRICS_FILE,
    RESUMABLE_STATES,
    STATUS_DEFAULTS,
    STATUS_FILE,
    MetricsChunk,
    MetricsLog,
    RunInfo,
    can_resume,
    check_run_dir_claimable,
    checkpoint_path,
    is_checkpoint_file_ref,
    list_runs,
    looks_like_run,
    new_run_dir,
    pid_alive,
    read_config,
    read_json,
    read_metrics,
    read_status,
    resolve_run,
    run_info,
    sanitize_name,
    update_status,
    write_config,
    write_json_atomic,
    write_status,
)
from glyphcore.runs.monitor import (
    MetricsTail,
    RunProgress,
    checkpointed_runs,
    elapsed_now,
    file_stamp,
    run_label,
    run_progress,
)
from glyphcore.runs.process import (
    can_delete,
    cancel,
    cancel_waiting,
    child_env,
    delete,
    launch,
    resume,
    spawn_detached,
    stop,
    train_argv,
)

__all__ = [
    "CONFIG_FILE",
    "STATUS_FILE",
    "METRICS_FILE",
    "BEST_CKPT",
    "LAST_CKPT",
    "EVAL_DIR",
    "LOG_FILE",
    "ACTIVE_STATES",
    "RESUMABLE_STATES",
    "STATUS_DEFAULTS",
    "RunInfo",
    "MetricsChunk",
    "MetricsLog",
    "resolve_run",
    "new_run_dir",
    "sanitize_name",
    "write_json_atomic",
    "read_json",
    "write_config",
    "write_status",
    "update_status",
    "read_status",
    "read_config",
    "read_metrics",
    "list_runs",
    "run_info",
    "pid_alive",
    "checkpoint_path",
    "is_checkpoint_file_ref",
    "can_resume",
    "check_run_dir_claimable",
    "looks_like_run",
    "launch",
    "train_argv",
    "spawn_detached",
    "child_env",
    "cancel",
    "cancel_waiting",
    "stop",
    "resume",
    "can_delete",
    "delete",
    "RunProgress",
    "run_progress",
    "elapsed_now",
    "MetricsTail",
    "run_label",
    "checkpointed_runs",
    "file_stamp",
]
