"""A run's settings as the Train page's query parameters, and back: ``/train?preset=quick&lr=0.003&seeds=3``.

The page's link is the form: a reload, a shared link or a "Clone and change" button from a run or a
group of replicates opens the Train form with those settings. ``config_to_query`` writes the link's
parameters (the preset, then only the settings that differ from it, plus the seed count when above 1);
``query_to_form`` reads them back, leaving out (and naming) any parameter that is not a valid value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from glyphcore.errors import GlyphError
from glyphcore.train.config import PRESETS, TrainConfig, coerce_value, field_specs, make_config

__all__ = ["SEEDS_MAX", "QueryForm", "config_to_query", "query_to_form"]

SEEDS_MAX = 10  # replicates one launch may start (each seed is a whole run)
SEEDS_KEY = "seeds"  # the query parameter of the seed count


@dataclass
class QueryForm:
    """The Train form that a link describes.

    Attributes:
        preset: the preset the settings start from.
        config: the preset with the link's valid settings on top.
        seeds: runs to launch, with seeds ``config.seed``, ``config.seed + 1``, ...
        bad: the parameters that were not a valid value (left out), in link order.
    """

    preset: str
    config: TrainConfig
    seeds: int = 1
    bad: list[str] = field(default_factory=list)


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else str(value)


def config_to_query(config: TrainConfig | Mapping[str, Any], seeds: int = 1) -> dict[str, str]:
    """The Train page's query parameters that reopen the form on ``config``.

    Args:
        config: a TrainConfig, or a run's config.json as a dict (keys that are not settings, such as the
            data set hash and versions, are ignored). For a group of replicates pass the config of its
            first seed.
        seeds: how many seeds the form launches (a group's n); written only when above 1.

    Returns:
        ``{"preset": ..., <setting>: <text>, ...}``: the settings that differ from the preset, as text
        (``urllib.parse.urlencode`` of it is the link's query string).

    Raises:
        ConfigError: a config that is not a valid TrainConfig.
    """
    if not isinstance(config, TrainConfig):
        names = {f.name for f in fields(TrainConfig)}
        values = {k: v for k, v in config.items() if k in names}
        preset = values.get("preset") if values.get("preset") in PRESETS else "report"
        config = make_config(str(preset), **{k: v for k, v in values.items() if k != "preset"})
    base = asdict(make_config(config.preset))
    query = {"preset": config.preset}
    for key, value in asdict(config).items():
        if key != "preset" and base[key] != value:
            query[key] = _text(value)
    if seeds > 1:
        query[SEEDS_KEY] = str(int(seeds))
    return query


def _seeds_of(text: str | None) -> int | None:
    """The seed count of a link's text, or None when it is not an integer in 1..SEEDS_MAX."""
    try:
        n = int(text or "1")
    except ValueError:
        return None
    return n if 1 <= n <= SEEDS_MAX else None


def query_to_form(params: Mapping[str, str], default_preset: str = "report") -> QueryForm:
    """The form that the query parameters ``params`` describe (the inverse of ``config_to_query``).

    A parameter that is not a valid value for its setting is left out and named in ``bad`` (the
    preset's value is used); parameters that are no setting at all are ignored. A preset the link
    does not name (or names wrongly) is ``default_preset``.
    """
    params = dict(params)
    preset = params.pop("preset", None)
    preset = preset if preset in PRESETS else default_preset
    seeds = _seeds_of(params.pop(SEEDS_KEY, None))
    bad = [] if seeds is not None else [SEEDS_KEY]
    specs = {s["name"]: s for s in field_specs()}
    values = {}
    for key, text in params.items():
        if key in specs and key != "preset":
            try:
                values[key] = coerce_value(specs[key], text)
            except GlyphError:
                bad.append(key)
    try:
        config = make_config(preset, **values)
    except GlyphError:  # each value has its type but one is out of range: try them one by one
        kept: dict[str, Any] = {}
        for key, value in values.items():
            try:
                make_config(preset, **kept, **{key: value})
                kept[key] = value
            except GlyphError:
                bad.append(key)
        config = make_config(preset, **kept)
    return QueryForm(preset, config, seeds or 1, bad)
