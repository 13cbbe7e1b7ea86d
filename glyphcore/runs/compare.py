"""Comparing runs: table rows, config differences, one-factor ablations, report cards.

Pure functions over what ``glyphcore.runs`` reads (RunInfo, config dicts, metrics events); the Runs
& Compare page and the home page show their output with ``st.dataframe`` / ``st.code``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from glyphcore.runs import RunInfo
from glyphcore.timefmt import date_text, duration_text
from glyphcore.train.config import RUNTIME_KEYS

__all__ = [
    "ABLATION_KEYS",
    "BOOKKEEPING_KEYS",
    "DERIVED_KEYS",
    "comparable_settings",
    "run_row",
    "value_text",
    "config_differences",
    "one_factor_ablations",
    "report_card",
    "REPORT_CARD_COLUMNS",
    "markdown_table",
]

# Keys of config.json that name a run or say where/how it ran (RUNTIME_KEYS), not what it trains:
# they never count as a difference between two runs.
BOOKKEEPING_KEYS = frozenset(
    {"run_id", "name", "created", "dataset", "versions", "sweep", "sweep_index", *RUNTIME_KEYS}
)
# Keys the training process derives from the settings (the model it built, its parameter count,
# how many processes ran it) or that only name where the settings started (the preset): two runs
# that differ only in activation also differ in model_args, which carries the activation, so these
# never count as a difference either.
DERIVED_KEYS = frozenset({"model_name", "model_args", "params", "world_size", "preset"})
# The factors of the one-factor ablation table.
ABLATION_KEYS = ("activation", "batchnorm", "optimizer", "lr", "batch_size", "dropout")


def run_row(info: RunInfo) -> dict[str, Any]:
    """One row of the runs table: the columns a person scans (accuracy in %, wall time in words).

    Columns: run, state, model, activation, params, best val acc (%), best epoch, epochs
    ("done/planned"), wall time, wall s, device, date.
    """
    acc = info.best_val_acc
    return {
        "run": info.run_id,
        "state": info.state,
        "model": info.model,
        "activation": info.activation,
        "params": info.params,
        "best val acc (%)": round(100.0 * acc, 2) if acc is not None else None,
        "best epoch": info.best_epoch,
        "epochs": f"{info.epoch}/{info.epochs}" if info.epochs else str(info.epoch),
        "wall time": duration_text(info.wall_seconds),
        "wall s": round(info.wall_seconds, 1) if info.wall_seconds else None,
        "device": info.device,
        "date": date_text(info.started),
    }


def comparable_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The settings of a config.json that say what a run trains (no bookkeeping, runtime or derived key)."""
    return {k: v for k, v in config.items() if k not in BOOKKEEPING_KEYS and k not in DERIVED_KEYS}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return a == b


def config_differences(configs: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The settings that differ between runs, one row per setting.

    Args:
        configs: run id -> its config.json dict.

    Returns:
        Rows ``{"setting": key, <run id>: value, ...}`` for every key whose values are not all equal
        (bookkeeping keys such as run_id, device and versions are left out); [] when all agree.
    """
    run_ids = list(configs)
    keys = sorted({k for c in configs.values() for k in comparable_settings(c)})
    rows = []
    for key in keys:
        values = [configs[r].get(key) for r in run_ids]
        if all(_same(values[0], v) for v in values[1:]):
            continue
        rows.append({"setting": key, **{r: value_text(v) for r, v in zip(run_ids, values)}})
    return rows


def value_text(value: Any) -> str:
    """A config value as text (so a table column may mix numbers, bools and dicts)."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "{}"
    return str(value)


def one_factor_ablations(
    configs: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any]],
    keys: Sequence[str] = ABLATION_KEYS,
) -> list[dict[str, Any]]:
    """Rows of a one-factor ablation table: runs that differ in exactly one of ``keys`` and agree
    on every other (non-bookkeeping) setting.

    Args:
        configs: run id -> config dict.
        results: run id -> measured results to show (e.g. {"best val acc (%)": .., "best epoch": ..}).
        keys: the factors (activation, batchnorm, optimizer, lr, batch_size, dropout).

    Returns:
        Rows ``{"factor": key, "value": v, "run": id, "same otherwise": k runs, **results[id]}``,
        grouped by factor then value; only groups with at least two distinct values of the factor.
    """
    rows: list[dict[str, Any]] = []
    comparable = {r: comparable_settings(c) for r, c in configs.items()}
    all_keys = sorted({k for c in comparable.values() for k in c})
    for factor in keys:
        groups: dict[str, list[str]] = {}
        for run_id, cfg in comparable.items():
            if factor not in cfg:
                continue
            rest = tuple((k, value_text(cfg.get(k))) for k in all_keys if k != factor)
            groups.setdefault(repr(rest), []).append(run_id)
        for members in groups.values():
            values = {value_text(comparable[r][factor]) for r in members}
            if len(values) < 2:
                continue
            for run_id in sorted(members, key=lambda r: _sort_key(comparable[r][factor])):
                rows.append(
                    {
                        "factor": factor,
                        "value": value_text(comparable[run_id][factor]),
                        "run": run_id,
                        **dict(results.get(run_id, {})),
                    }
                )
    return rows


def _sort_key(value: Any) -> tuple:
    return (0, value, "") if isinstance(value, int | float) and not isinstance(value, bool) else (1, 0, str(value))


REPORT_CARD_COLUMNS = (
    "run",
    "model",
    "activation",
    "params",
    "best epoch",
    "val acc (%)",
    "wall time",
    "device",
    "images/s",
)


def report_card(info: RunInfo, events: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A run's report card: params, best epoch, accuracy, wall time, device, images/s.

    Args:
        info: the run (``runs.list_runs()`` item).
        events: its metrics events; images/s is the mean over its epoch records when the status has
            none.
    """
    ips = info.status.get("images_per_s") if info.status else None
    if ips is None:
        speeds = [e["images_per_s"] for e in events if e.get("event") == "epoch" and e.get("images_per_s")]
        ips = sum(speeds) / len(speeds) if speeds else None
    acc = info.best_val_acc
    return {
        "run": info.run_id,
        "model": info.model or "",
        "activation": info.activation or "",
        "params": f"{info.params:,}" if info.params else "",
        "best epoch": f"{info.best_epoch}/{info.epochs}" if info.best_epoch else "",
        "val acc (%)": f"{100 * acc:.2f}" if acc is not None else "",
        "wall time": duration_text(info.wall_seconds),
        "device": info.device or "",
        "images/s": f"{ips:,.0f}" if ips else "",
    }


def markdown_table(cards: Sequence[Mapping[str, Any]], header: bool = True) -> str:
    """Report cards as Markdown table rows (with the header and separator rows when ``header``)."""
    cols = list(REPORT_CARD_COLUMNS)
    lines = []
    if header:
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join("---" for _ in cols) + "|")
    for card in cards:
        lines.append("| " + " | ".join(str(card.get(c, "")).replace("|", "\\|") for c in cols) + " |")
    return "\n".join(lines)
