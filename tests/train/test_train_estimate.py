"""The time estimate's measurement: in the background, with an expiry (glyphcore.train.estimate)."""

from __future__ import annotations

import threading

import pytest

from glyphcore.errors import ConfigError
from glyphcore.jobs import get_job
from glyphcore.train.config import make_config
from glyphcore.train.estimate import (
    LOAD_CHANGE,
    LOAD_MIN_AGE_S,
    MAX_AGE_S,
    lookup_speed,
    measure_in_subprocess,
    speed_key,
)

SHAPE = (1, 16, 16)


def counting_measure(calls: list, gate: threading.Event | None = None):
    def measure(config, shape, num_classes):
        calls.append(config.batch_size)
        if gate is not None:
            gate.wait(30)
        return 100.0 * len(calls)

    return measure


def settled(config, classes, measure, **kw):
    """The lookup once the measurement it started has landed."""
    lookup = lookup_speed(config, SHAPE, classes, measure=measure, **kw)
    for _ in range(600):
        if not lookup.measuring:
            return lookup
        threading.Event().wait(0.05)
        lookup = lookup_speed(config, SHAPE, classes, measure=measure, **kw)
    raise AssertionError("the measurement did not land")


def test_the_lookup_never_waits_and_a_fresh_reading_is_not_measured_again():
    calls, gate = [], threading.Event()
    config = make_config("quick", batch_size=31)  # a key no other test measures
    first = lookup_speed(config, SHAPE, 3, measure=counting_measure(calls, gate), load_per_core=0.0)
    assert first.reading is None and first.measuring  # returned at once, while the measurement waits
    gate.set()
    done = settled(config, 3, counting_measure(calls), load_per_core=0.0)
    assert done.reading.images_per_s == 100.0
    again = lookup_speed(config, SHAPE, 3, measure=counting_measure(calls), load_per_core=0.0)
    assert not again.measuring and calls == [31]


def test_a_reading_older_than_its_expiry_is_measured_again():
    calls = []
    config = make_config("quick", batch_size=32)
    reading = settled(config, 3, counting_measure(calls), load_per_core=0.0).reading
    later, gate = reading.measured_at + MAX_AGE_S + 1, threading.Event()
    stale = lookup_speed(config, SHAPE, 3, measure=counting_measure(calls, gate), now=later, load_per_core=0.0)
    assert stale.reading == reading and stale.measuring  # the old figure is shown while it is re-measured
    gate.set()
    get_job(f"speed {speed_key(config, SHAPE, 3)}").wait(30)
    fresh = lookup_speed(config, SHAPE, 3, measure=counting_measure(calls), load_per_core=0.0)
    assert calls == [32, 32] and fresh.reading.images_per_s == 200.0 and not fresh.measuring


def test_a_change_of_the_machines_load_measures_again():
    calls = []
    config = make_config("quick", batch_size=33)
    reading = settled(config, 3, counting_measure(calls), load_per_core=0.0).reading
    busy = reading.load_per_core + LOAD_CHANGE
    soon = lookup_speed(
        config, SHAPE, 3, measure=counting_measure(calls), now=reading.measured_at + 1, load_per_core=busy
    )
    assert not soon.measuring  # a load swing in the first minute does not re-measure non-stop
    later = reading.measured_at + LOAD_MIN_AGE_S + 1
    gate = threading.Event()
    moved = lookup_speed(config, SHAPE, 3, measure=counting_measure(calls, gate), now=later, load_per_core=busy)
    assert moved.measuring
    gate.set()
    get_job(f"speed {speed_key(config, SHAPE, 3)}").wait(30)
    assert calls == [33, 33]


@pytest.mark.slow
def test_the_child_process_measures_a_real_model_and_reports_a_refused_setting():
    config = make_config("report", model="tiny_conv", batch_size=8, epochs=1, model_options={})
    assert measure_in_subprocess(config, SHAPE, 3) > 0
    with pytest.raises(ConfigError, match="depth"):
        measure_in_subprocess(make_config("report", model="tiny_conv", model_options={"depth": 3}), SHAPE, 3)
