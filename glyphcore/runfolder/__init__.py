"""The run folder: one folder per training run, its files, and the list of runs.

- ``files``: the folder's names, config.json, JSON read and written, what may be written or deleted;
- ``status``: status.json, range-checked and reconciled with the process table;
- ``metrics``: metrics.jsonl and train.log;
- ``lock``: one writer per run (the trainer's lock, status.json updates under their own lock);
- ``store``: the list of runs (and every public name of the modules above).

Below ``glyphcore.train`` (the trainer writes these files) and ``glyphcore.runs`` (launching,
sweeps, comparisons read them), so neither imports the other to reach a run's files. Nothing here
imports torch.
"""
