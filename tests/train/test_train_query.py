"""The Train page's link: a run's settings as query parameters and back (glyphcore.train.query)."""

from __future__ import annotations

import json
from dataclasses import asdict
from urllib.parse import parse_qsl, urlencode

from glyphcore.train.config import make_config
from glyphcore.train.query import SEEDS_MAX, config_to_query, query_to_form


def test_every_setting_and_the_seed_count_round_trip_through_the_link():
    config = make_config(
        "quick",
        model="lenet",
        activation="gelu",
        lr=3e-3,
        batchnorm=False,
        patience=4,
        time_budget_min=2.5,
        compile="default",
        eval_batch_size=250,
        init_from="run-donor",
        model_options={},
        val_split="test",
    )
    query = config_to_query(config, seeds=3)
    assert query["preset"] == "quick" and query["seeds"] == "3"
    assert "batch_size" not in query  # the preset's value: not repeated in the link
    form = query_to_form(dict(parse_qsl(urlencode(query))))  # through a real query string
    assert (form.preset, form.seeds, form.bad) == ("quick", 3, [])
    assert asdict(form.config) == asdict(config)


def test_a_runs_config_json_makes_the_same_link_as_its_config():
    config = make_config("fast", activation="elu", seed=7)
    stored = {**asdict(config), "run_id": "r1", "dataset": {"hash": "x"}, "versions": {}}  # config.json keeps more
    assert config_to_query(stored) == config_to_query(config) == {"preset": "fast", "activation": "elu", "seed": "7"}


def test_model_options_go_as_json_and_one_seed_is_not_written():
    query = config_to_query(make_config("report", model="vgg", model_options={"depth": 11}))
    assert json.loads(query["model_options"]) == {"depth": 11}
    assert "seeds" not in query


def test_bad_values_are_named_and_left_out_the_rest_kept():
    form = query_to_form({"preset": "report", "lr": "abc", "epochs": "7", "dropout": "1.5", "seeds": "99"})
    assert sorted(form.bad) == ["dropout", "lr", "seeds"]  # a type error, a range error, too many seeds
    assert form.config.epochs == 7 and form.config.lr == make_config("report").lr
    assert form.seeds == 1 and SEEDS_MAX < 99


def test_a_link_without_a_preset_starts_from_the_given_default():
    form = query_to_form({"epochs": "2", "unknown": "x"}, default_preset="quick")
    assert form.preset == "quick" and form.config.epochs == 2 and form.bad == []
