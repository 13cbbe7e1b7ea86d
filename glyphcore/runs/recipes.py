"""A recipe's runs: launch one (its sweep, for the ablation recipes) and find its finished runs.

A run launched from a recipe is named after it (config.json's ``name`` is the recipe's name), which is
how the gallery finds it again to show its result beside the report's figure.
"""

from __future__ import annotations

from glyphcore.runfolder.store import RunInfo, list_runs
from glyphcore.runs.process import launch
from glyphcore.train.recipes import get_recipe, recipe_config, require_ready

__all__ = ["launch_recipe", "recipe_runs"]


def launch_recipe(name: str, *, from_scratch: bool = False) -> str:
    """Start recipe ``name`` in the background once everything it needs is here.

    Args:
        name: a recipe name.
        from_scratch: a transfer recipe without its ImageNet weights.

    Returns:
        The run id, or for a recipe with a sweep (the ablation reports) the sweep id.

    Raises:
        ConfigError: unknown recipe, or a download missing (says which, its size, and how to get it).
        RunError: the process could not start.
    """
    from glyphcore.runs.sweep import launch_sweep

    recipe = get_recipe(name)
    config = recipe_config(name, from_scratch=from_scratch)
    require_ready(recipe, from_scratch=from_scratch, config=config)
    if recipe.sweep:
        return launch_sweep(config, recipe.sweep, parallel=1, name=recipe.name)
    return launch(config, name=recipe.name)


def recipe_runs(name: str, runs: list[RunInfo] | None = None) -> list[RunInfo]:
    """The runs launched from recipe ``name`` (named after it), newest first."""
    return [r for r in (list_runs() if runs is None else runs) if r.name == name and not r.is_starter]
