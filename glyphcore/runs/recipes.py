"""A recipe's runs: launch one (its sweep, for the ablation recipes; N seeds of it on request) and
find its finished runs and our figure beside the report's.

A run launched from a recipe is named after it (config.json's ``name`` is the recipe's name), which is
how the gallery finds it again. Its runs fall into groups of replicates (``glyphcore.runs.groups``:
equal settings but for the seed); our figure is the group of the newest finished run, as mean, sd
and n of the best validation accuracy over its seeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glyphcore.runfolder import store
from glyphcore.runfolder.store import RunInfo, list_runs
from glyphcore.runs.groups import RunGroup, group_runs
from glyphcore.runs.process import launch
from glyphcore.train.config import TrainConfig
from glyphcore.train.recipes import get_recipe, recipe_config, require_ready

__all__ = ["launch_recipe", "recipe_runs", "RecipeResult", "recipe_result", "validated_split"]

METRIC = "best_val_acc"  # the figure a recipe's run is judged by: best accuracy on its validation split


def launch_recipe(name: str, *, from_scratch: bool = False, seeds: int = 1, config: TrainConfig | None = None) -> str:
    """Start recipe ``name`` in the background once everything it needs is here.

    Args:
        name: a recipe name.
        from_scratch: a transfer recipe without its ImageNet weights.
        seeds: replicates of every run (seeds ``config.seed`` onwards, consecutive): more than 1
            makes one sweep that crosses the recipe's sweep (if any) with the seeds.
        config: the recipe's config with the user's settings on top (``train --recipe`` with flags):
            that one setting is launched, without the recipe's sweep. Default: the recipe's own
            config and, for the ablation recipes, the sweep the report ran.

    Returns:
        The run id, or the sweep id when it starts several runs (a sweep, or seeds).

    Raises:
        ConfigError: unknown recipe, seeds below 1, or a download missing (says which, its size, and
            how to get it).
        RunError: the process could not start.
    """
    from glyphcore.runs.sweep import launch_sweep

    recipe = get_recipe(name)
    grid = recipe.sweep if config is None and recipe.sweep else {}
    config = config or recipe_config(name, from_scratch=from_scratch)
    require_ready(recipe, from_scratch=from_scratch, config=config)
    if grid or seeds != 1:  # one at a time: the gallery's time estimate adds the runs' times up
        return launch_sweep(config, grid, parallel=1, name=recipe.name, seeds=seeds if seeds != 1 else None)
    return launch(config, name=recipe.name)


def recipe_runs(name: str, runs: list[RunInfo] | None = None) -> list[RunInfo]:
    """The runs launched from recipe ``name`` (named after it), newest first."""
    return [r for r in (list_runs() if runs is None else runs) if r.name == name and not r.is_starter]


def validated_split(config: Mapping[str, Any]) -> str | None:
    """The split a run validated on, from its config.json (``dataset.splits.val``, as the training
    process recorded it); None when missing or not a short name."""
    dataset = config.get("dataset")
    splits = dataset.get("splits") if isinstance(dataset, Mapping) else None
    split = splits.get("val") if isinstance(splits, Mapping) else None
    return split if isinstance(split, str) and split.isidentifier() and len(split) <= 20 else None


@dataclass(frozen=True)
class RecipeResult:
    """Our figure for a recipe: the group of its newest finished run.

    Attributes:
        run: the newest finished run of the recipe (the group is its group).
        group: the group (its members, seeds and label; ``group.n()`` seeds count).
        mean: mean best validation accuracy over the counted seeds, in percent (None: no sane value).
        sd: its sample sd in percentage points (None below two seeds).
        n: how many seeds count.
        split: the split the counted runs validated on (``valid``, ``test``), None when unknown or mixed.
        groups: how many groups the recipe's runs form (several: sweep arms, or other settings).
    """

    run: RunInfo
    group: RunGroup
    mean: float | None
    sd: float | None
    n: int
    split: str | None
    groups: int


def recipe_result(name: str, runs: list[RunInfo] | None = None) -> RecipeResult | None:
    """Our figure for recipe ``name``: the group of its newest finished run (mean, sd, n over the
    seeds that finished; a repeated seed counts once, see ``RunGroup.values_by_seed``), or None
    when none of its runs has finished."""
    mine = recipe_runs(name, runs)
    newest = next((r for r in mine if r.state == "done"), None)
    if newest is None:
        return None
    groups = group_runs(mine)
    group = next(g for g in groups if any(m.run_id == newest.run_id for m in g.members))
    mean, sd = group.mean(METRIC), group.sd(METRIC)
    counted = [m for m in group.members if m.state == "done" and group.value(m, METRIC) is not None]
    found = {validated_split(store.read_json(m.path / store.CONFIG_FILE) or {}) for m in counted}
    return RecipeResult(
        run=newest,
        group=group,
        mean=None if mean is None else 100.0 * mean,
        sd=None if sd is None else 100.0 * sd,
        n=group.n(METRIC),
        split=found.pop() if len(found) == 1 else None,
        groups=len(groups),
    )
