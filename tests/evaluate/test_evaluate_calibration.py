"""Evaluation with calibrated probabilities, ECE before/after, per-family rows, and a cache keyed on the temperature."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import tiny_run

from glyphcore.checkpoint import load_checkpoint, save_checkpoint
from glyphcore.data import load_dataset
from glyphcore.evaluate import EVAL_FORMAT, evaluate_run
from glyphcore.evaluate.result import per_family_rows
from glyphcore.frame import CLASSES
from glyphcore.infer.calibration import expected_calibration_error


def test_per_family_rows_of_a_hand_made_split():
    labels = np.array([0, 1, 2, 0, 1, 2])
    preds = np.array([0, 1, 2, 0, 2, 2])
    fonts = [("Alpha", "sans"), ("Alpha", "sans"), ("Beta", "serif")]
    rows = per_family_rows(labels, preds, np.array([0, 1, 0, 2, 2, 2]), fonts, CLASSES)
    assert [r["family"] for r in rows] == ["Beta", "Alpha"]  # worst first
    beta, alpha = rows
    assert (beta["n"], beta["errors"], beta["fonts"], beta["style"]) == (3, 1, 1, "serif")
    assert beta["accuracy"] == pytest.approx(2 / 3) and beta["top_confusion"] == "B -> C x 1"
    assert (alpha["n"], alpha["errors"], alpha["accuracy"], alpha["fonts"]) == (3, 0, 1.0, 2)
    assert per_family_rows(labels, preds, None, fonts, CLASSES) == []


def test_evaluation_is_calibrated_per_family_and_keyed_on_the_temperature(tiny_glyphs, runs_dir):
    run = tiny_run(runs_dir, "ev")
    t = load_checkpoint(run / "best.pt")["calibration"]["temperature"]
    r = evaluate_run(run, "test")
    assert not r.cached and r.temperature == pytest.approx(t)
    ok = r.labels == r.preds
    assert r.ece == pytest.approx(expected_calibration_error(r.p_pred, ok))
    assert r.ece_uncalibrated == pytest.approx(expected_calibration_error(r.p_pred_raw, ok))
    if abs(t - 1.0) > 1e-3:
        assert not np.allclose(r.p_pred, r.p_pred_raw)
    # per family: the test split's families from the manifest, every sample counted once
    data = load_dataset("glyphs-52", "test")
    fams = {data.meta["fonts"][i]["family"] for i in np.unique(data.font_ids)}
    rows = r.per_family
    assert {row["family"] for row in rows} == fams and sum(row["n"] for row in rows) == r.n
    assert sum(row["errors"] for row in rows) == int((~ok).sum())
    summary = json.loads((r.out_dir / "summary.json").read_text())
    assert summary["format"] == EVAL_FORMAT == "glyphcore.eval/2"
    assert summary["key"]["temperature"] == pytest.approx(t) and summary["per_family"] == rows

    back = evaluate_run(run, "test")  # read back from eval/, with its per-sample fonts and raw probabilities
    assert back.cached and back.per_family == rows and back.ece_uncalibrated == pytest.approx(r.ece_uncalibrated)

    # another temperature (same weights): the cache no longer matches, probabilities change
    ckpt = load_checkpoint(run / "best.pt")
    ckpt["calibration"]["temperature"] = 2 * t
    save_checkpoint(ckpt, run / "best.pt")
    again = evaluate_run(run, "test")
    assert not again.cached and again.temperature == pytest.approx(2 * t)
    np.testing.assert_array_equal(again.preds, r.preds)  # the argmax does not move
    assert not np.allclose(again.p_pred, r.p_pred)
