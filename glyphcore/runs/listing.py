"""The runs as the lists show them: one row per group of seed replicates (mean, sd, n), a run of
its own as one row, newest first; each row carries its member run ids, so a tick on a row picks them.

Pure functions over ``RunInfo`` (``glyphcore.runs.groups`` places the runs in groups); the Home
and Runs & Compare pages show the rows with ``st.dataframe``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from glyphcore.runfolder.store import RunInfo
from glyphcore.runs.compare import run_row
from glyphcore.runs.groups import RunGroup, group_runs
from glyphcore.timefmt import duration_text

__all__ = ["ListedRow", "listing_rows", "SEEDS_COL", "SD_COL"]

SEEDS_COL = "seeds"  # seeds counted in a group's mean (finished, metric known); 1 for a run of its own
SD_COL = "sd (points)"  # the group's sample sd of best val accuracy, percentage points


@dataclass(frozen=True)
class ListedRow:
    """One row of a runs list.

    Attributes:
        row: the columns of ``compare.run_row`` plus :data:`SEEDS_COL` and :data:`SD_COL`; for a
            group "run" reads "<oldest run> + k more", "best val acc (%)" is the mean over its seeds,
            "state" counts its members' states and the wall time is their mean.
        run_ids: the runs the row stands for, oldest first.
    """

    row: dict[str, Any]
    run_ids: list[str]


def _group_row(group: RunGroup) -> dict[str, Any]:
    members = group.members
    row = run_row(members[-1])  # model, params, device and date of its newest run
    mean, sd = group.mean("best_val_acc"), group.sd("best_val_acc")
    walls = [m.wall_seconds for m in members if m.wall_seconds]
    wall = sum(walls) / len(walls) if walls else None
    states = Counter(m.state for m in members)
    row.update(
        {
            "run": f"{members[0].run_id} + {len(members) - 1} more",
            "state": ", ".join(f"{n} {state}" for state, n in states.most_common()),
            "best val acc (%)": None if mean is None else round(100.0 * mean, 2),
            "best epoch": None,
            "wall time": duration_text(wall),
            "wall s": None if wall is None else round(wall, 1),
            SEEDS_COL: group.n("best_val_acc"),
            SD_COL: None if sd is None else round(100.0 * sd, 2),
        }
    )
    return row


def _single_row(info: RunInfo) -> dict[str, Any]:
    return {**run_row(info), SEEDS_COL: 1, SD_COL: None}


def listing_rows(infos: Sequence[RunInfo]) -> list[ListedRow]:
    """``infos`` as list rows, newest first: one row per group of two or more seed replicates, one
    per other run (also a run whose config.json cannot be read, which cannot be grouped)."""
    groups = group_runs(infos)
    grouped = {m.run_id for g in groups for m in g.members}
    items: list[tuple[float, ListedRow]] = []
    for group in groups:
        ids = [m.run_id for m in group.members]
        row = _group_row(group) if len(ids) > 1 else _single_row(group.members[0])
        items.append((max(m.started or 0.0 for m in group.members), ListedRow(row, ids)))
    for info in infos:
        if info.run_id not in grouped:
            items.append((info.started or 0.0, ListedRow(_single_row(info), [info.run_id])))
    order = {info.run_id: i for i, info in enumerate(infos)}  # ties keep the list's own order
    items.sort(key=lambda item: (-item[0], order[item[1].run_ids[-1]]))
    return [row for _, row in items]
