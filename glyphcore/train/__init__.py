"""Training: settings, device policy, the loop and its callbacks.

- ``config``: ``TrainConfig``, its presets and its command-line form (no torch, no numpy);
- ``recipes``: every course report's experiment as a named recipe over the presets (no torch at import);
- ``device``: device and precision policy, the CPU allocator setting, device-resident data;
- ``factories``: the model, optimizer and learning-rate schedule a config asks for;
- ``callbacks``: save-best, early stopping, time budget, the run-folder writer (no torch);
- ``state``: ``TrainState`` of one fit, ``FitResult``, resuming from a run folder, the background
  checkpoint writer;
- ``distributed``: data parallel (torchrun) in one ``Distributed`` object, a no-op in one process;
- ``rundir``: claiming a run folder (checks, trainer lock, release) in one place;
- ``epoch``: ``train_one_epoch`` / ``evaluate`` and the epoch's checks (divergence, chance level);
- ``setup``: everything before the first epoch (device, data, model, optimizer, resume, compile);
- ``loop``: ``fit`` (claim, setup, epochs, teardown).

Randomness: the weights are initialised from ``seed``; epoch ``e``'s shuffle and augmentation come
from generators seeded with (seed, e), so a run resumed at an epoch boundary continues exactly as
an uninterrupted one would; a mid-epoch resume point also stores the generators' states.

The settings are imported at once; everything that needs torch is loaded on first use (PEP 562),
so that the CLI's ``--help`` and the app's forms stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from glyphcore.train.config import (
    CHOICES,
    PRESETS,
    RUNTIME_FIELDS,
    TrainConfig,
    config_from_dict,
    config_to_argv,
    make_config,
)

# Public name -> the submodule that defines it (loaded on first use).
_LAZY = {
    "resolve_device": "device",
    "resolve_amp": "device",
    "cpu_has_native_bf16": "device",
    "keep_freed_cpu_memory": "device",
    "DeviceData": "device",
    "epoch_permutation": "device",
    "describe_device": "device",
    "build_model": "factories",
    "count_params": "factories",
    "make_optimizer": "factories",
    "lr_at": "factories",
    "ONECYCLE_WARMUP": "factories",
    "Callback": "callbacks",
    "SaveBest": "callbacks",
    "EarlyStopping": "callbacks",
    "TimeBudget": "callbacks",
    "RunFolderWriter": "callbacks",
    "default_callbacks": "setup",
    "best_log_line": "callbacks",
    "TrainState": "state",
    "FitResult": "state",
    "CheckpointSaver": "state",
    "train_one_epoch": "epoch",
    "evaluate": "epoch",
    "fit": "loop",
    "FLUSH_INTERVAL_S": "epoch",
}

__all__ = [
    "TrainConfig",
    "CHOICES",
    "PRESETS",
    "RUNTIME_FIELDS",
    "make_config",
    "config_from_dict",
    "config_to_argv",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"glyphcore.train.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'glyphcore.train' has no attribute {name!r}")
