"""Evaluation: metrics checked against small examples worked out by hand, and evaluate_run's eval/ cache."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from glyphcore.checkpoint import save_checkpoint
from glyphcore.errors import CheckpointError, DataError
from glyphcore.evaluate import (
    PREDICTION_DTYPE,
    accuracy_line,
    case_swap_share,
    compare_predictions,
    confusion_matrix,
    evaluate_predictor,
    merged_accuracy,
    most_confused,
    normalize_confusion,
    per_class_metrics,
    top_losses,
)
from glyphcore.testing import untrained_checkpoint

# ---------------------------------------------------------------------------------------------
# Hand-worked example: 3 classes, 8 samples
#   actual    a a b b c c c c
#   predicted a b b b c a b b
# confusion (rows actual, columns predicted):  a: [1 1 0]   b: [0 2 0]   c: [1 2 1]
# precision a 1/2, b 2/5, c 1/1;  recall a 1/2, b 2/2, c 1/4
# F1 a 0.5, b 2*0.4*1/1.4 = 4/7, c 2*1*0.25/1.25 = 0.4;  accuracy 4/8
# ---------------------------------------------------------------------------------------------
CLS = ["a", "b", "c"]
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2, 2])
Y_PRED = np.array([0, 1, 1, 1, 2, 0, 1, 1])


def test_confusion_matrix_by_hand():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [1, 2, 1]])
    assert cm.dtype == np.int64
    np.testing.assert_allclose(normalize_confusion(cm), [[0.5, 0.5, 0], [0, 1, 0], [0.25, 0.5, 0.25]])
    # a class with no samples keeps a zero row instead of NaN
    np.testing.assert_array_equal(normalize_confusion(confusion_matrix([0], [0], 2))[1], [0, 0])
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 0], 3)


def test_per_class_metrics_by_hand():
    rows = per_class_metrics(confusion_matrix(Y_TRUE, Y_PRED, 3), CLS)
    assert [r["class"] for r in rows] == CLS
    assert [r["precision"] for r in rows] == pytest.approx([0.5, 0.4, 1.0])
    assert [r["recall"] for r in rows] == pytest.approx([0.5, 1.0, 0.25])
    assert [r["f1"] for r in rows] == pytest.approx([0.5, 4 / 7, 0.4])
    assert [r["support"] for r in rows] == [2, 2, 4]
    assert [r["predicted"] for r in rows] == [2, 5, 1]
    # a class never predicted and never seen: zeros, not a division error
    empty = per_class_metrics(np.array([[3, 0], [0, 0]]), ["x", "y"])[1]
    assert (empty["precision"], empty["recall"], empty["f1"], empty["support"]) == (0.0, 0.0, 0.0, 0)


def test_most_confused_ordering():
    cm = confusion_matrix(Y_TRUE, Y_PRED, 3)
    # by count first, then by actual class, then by predicted class; the diagonal never appears
    assert most_confused(cm, CLS) == [("c", "b", 2), ("a", "b", 1), ("c", "a", 1)]
    assert most_confused(cm, CLS, min_count=2) == [("c", "b", 2)]
    assert most_confused(cm, CLS, min_count=3) == []
    assert most_confused(np.eye(3, dtype=int) * 5, CLS) == []


def test_accuracy_line_is_the_reports():
    assert accuracy_line(0.990256, 15600, "test") == "Accuracy of the network on the 15600 test images: 99.03%"


def test_merged_accuracies_and_case_swaps_by_hand():
    classes = ["C", "I", "c", "l"]
    #         C->c  c->C  I->l  l->I  C->C  I->c  l->l  c->I
    y_true = [0, 2, 1, 3, 0, 1, 3, 2]
    y_pred = [2, 0, 3, 1, 0, 2, 3, 1]
    # plain: C->C and l->l are right: 2/8
    assert merged_accuracy(y_true, y_pred, classes, []) == 0.25
    # case-insensitive: C/c is a case pair (I/l is not: they are different letters): +C->c, c->C = 4/8
    assert merged_accuracy(y_true, y_pred, classes, "case_insensitive") == 0.5
    # I/l merged: +I->l, l->I = 4/8; with the size-only pairs (C/c among them) too: 6/8
    assert merged_accuracy(y_true, y_pred, classes, "I/l") == 0.5
    assert merged_accuracy(y_true, y_pred, classes, "size_only") == 0.5
    assert merged_accuracy(y_true, y_pred, classes, "I/l+size_only") == 0.75
    # 6 errors, 2 of them swap the case of the right letter
    assert case_swap_share(y_true, y_pred, classes) == pytest.approx(2 / 6)
    assert case_swap_share([0, 1], [0, 1], classes) == 0.0
    # classes that have no letters: merges change nothing
    assert merged_accuracy([0, 1], [1, 1], ["0", "1"], "I/l+size_only") == 0.5


def test_top_losses_order_and_cells():
    loss = np.array([0.1, 2.0, 0.5, 2.0, 3.0])
    y_true = np.array([0, 1, 2, 0, 1])
    y_pred = np.array([0, 0, 2, 1, 0])
    p_true = np.exp(-loss)
    top = top_losses(loss, y_true, y_pred, CLS, k=3, p_true=p_true, p_pred=np.ones(5))
    assert [t.index for t in top] == [4, 1, 3]  # equal losses: lower index first
    assert (top[0].actual, top[0].predicted) == ("b", "a")
    assert top[0].p_true == pytest.approx(np.exp(-3.0))
    cell = top_losses(loss, y_true, y_pred, CLS, k=10, actual="b", predicted="a")
    assert [t.index for t in cell] == [4, 1]


def test_compare_predictions_by_hand():
    class R:  # the two evaluations: only labels, preds and classes matter
        def __init__(self, labels, preds):
            self.labels, self.preds, self.classes = np.array(labels), np.array(preds), CLS

    a = R([0, 1, 2, 0], [0, 1, 0, 1])
    b = R([0, 1, 2, 0], [0, 2, 0, 0])
    cmp = compare_predictions(a, b)
    np.testing.assert_array_equal(cmp.indices, [1, 3])
    np.testing.assert_array_equal(cmp.pred_a, [1, 1])
    np.testing.assert_array_equal(cmp.pred_b, [2, 0])
    assert cmp.counts == {
        "both_right": 1,
        "only_a_right": 1,
        "only_b_right": 1,
        "both_wrong_same": 1,
        "both_wrong_different": 0,
    }
    assert cmp.rows() == [
        {"index": 1, "actual": "b", "pred_a": "b", "pred_b": "c"},
        {"index": 3, "actual": "a", "pred_a": "b", "pred_b": "a"},
    ]
    with pytest.raises(DataError, match="same samples"):
        compare_predictions(a, R([0, 1, 2], [0, 1, 2]))


# ---------------------------------------------------------------------------------------------
# evaluate_run: a real (tiny) run on the tiny glyphs-52, cached in eval/
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def trained_run(tiny_glyphs, tmp_path, monkeypatch):
    from tiny_runs import tiny_run

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(runs_dir))
    return tiny_run(runs_dir, "tiny")


def test_evaluate_run_writes_eval_and_reuses_it_until_the_checkpoint_changes(trained_run):
    from glyphcore.data import load_dataset
    from glyphcore.evaluate import evaluate_run, load_eval

    r = evaluate_run("tiny", split="test")
    test = load_dataset("glyphs-52", "test")
    assert not r.cached and r.n == len(test) == 52 * 4
    np.testing.assert_array_equal(r.labels, test.labels)
    assert r.accuracy_line == f"Accuracy of the network on the {len(test)} test images: {100 * r.accuracy:.2f}%"
    assert r.confusion.sum() == r.n and np.trace(r.confusion) == int(np.sum(r.preds == r.labels))
    # p(pred) is the largest probability, loss = -log p(true)
    assert np.all(r.p_pred >= r.p_true - 1e-6)
    np.testing.assert_allclose(r.loss, -np.log(np.maximum(r.p_true, 1e-30)), rtol=1e-4, atol=1e-4)
    out = trained_run / "eval" / "test"
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion.npy",
        "per_class.json",
        "predictions.npy",
        "summary.json",
    ]
    assert np.load(out / "predictions.npy").dtype == PREDICTION_DTYPE
    summary = json.loads((out / "summary.json").read_text())
    assert summary["accuracy_line"] == r.accuracy_line and summary["key"]["checkpoint"]["sha256"]
    assert summary["dataset"]["families"]
    # which design family was held out, for tests/test_starter.py: recorded with the training data's hash
    trained_on = json.loads((trained_run / "eval" / "trained_on.json").read_text())
    assert trained_on["hash"] == torch.load(trained_run / "best.pt", weights_only=True)["dataset"]["hash"]
    assert set(trained_on["families"].values()) <= {"train", "valid", "test"}
    assert "test" in trained_on["families"].values()
    assert len(json.loads((out / "per_class.json").read_text())) == 52

    # the same checkpoint: read back, not recomputed (the files are not rewritten)
    mtime = (out / "summary.json").stat().st_mtime_ns
    again = evaluate_run("tiny", split="test")
    assert again.cached and (out / "summary.json").stat().st_mtime_ns == mtime
    np.testing.assert_array_equal(again.preds, r.preds)
    np.testing.assert_array_equal(again.confusion, r.confusion)
    assert again.per_class == r.per_class and again.merged == r.merged
    assert load_eval(out).accuracy == r.accuracy

    # a touched but identical checkpoint is still the same checkpoint
    os.utime(trained_run / "best.pt")
    assert evaluate_run("tiny", split="test").cached

    # new weights: evaluated again
    ck = torch.load(trained_run / "best.pt", weights_only=True)
    ck["state_dict"] = {k: (torch.zeros_like(v) if v.is_floating_point() else v) for k, v in ck["state_dict"].items()}
    save_checkpoint(ck, trained_run / "best.pt")
    fresh = evaluate_run("tiny", split="test")
    assert not fresh.cached
    assert len(set(fresh.preds.tolist())) == 1  # zero weights: one answer for everything


def test_evaluate_other_splits_and_last(trained_run):
    from glyphcore.evaluate import evaluate_run

    v = evaluate_run(trained_run, split="valid", which="last")
    assert v.split == "valid" and v.n == 52 * 4 and v.which == "last"
    assert (trained_run / "eval" / "valid-last" / "summary.json").is_file()
    with pytest.raises(DataError, match="no split 'holdout'"):
        evaluate_run("tiny", split="holdout")


def test_run_a_against_run_b(trained_run, tmp_path):
    from glyphcore.evaluate import evaluate_run

    b_dir = trained_run.parent / "tiny-b"
    import shutil

    shutil.copytree(trained_run, b_dir)
    ck = torch.load(b_dir / "best.pt", weights_only=True)
    torch.manual_seed(1)
    ck["state_dict"] = {
        k: (v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v) for k, v in ck["state_dict"].items()
    }
    save_checkpoint(ck, b_dir / "best.pt")
    a, b = evaluate_run("tiny"), evaluate_run("tiny-b")
    cmp = compare_predictions(a, b)
    assert sum(cmp.counts.values()) == a.n
    np.testing.assert_array_equal(cmp.indices, np.flatnonzero(a.preds != b.preds))
    assert cmp.counts["only_a_right"] - cmp.counts["only_b_right"] == int(
        np.sum(a.preds == a.labels) - np.sum(b.preds == b.labels)
    )


def test_a_checkpoint_with_another_class_list_or_no_checkpoint(trained_run, tiny_glyphs):
    from glyphcore.evaluate import evaluate_run

    digits = trained_run.parent / "digits"
    digits.mkdir()
    (digits / "config.json").write_text(json.dumps({"data": "glyphs-52"}))
    untrained_checkpoint(digits / "best.pt", classes="0123456789")
    with pytest.raises(CheckpointError, match="trained on 10 classes .* but glyphs-52/test has 52"):
        evaluate_run("digits")
    (digits / "best.pt").unlink()
    (digits / "status.json").write_text(json.dumps({"state": "failed"}))
    with pytest.raises(CheckpointError, match="no best.pt yet"):
        evaluate_run("digits")


def test_evaluate_predictor_refuses_images_that_do_not_fit(tmp_path):
    from glyphcore.frame import CLASSES
    from glyphcore.infer import load_predictor

    pr = load_predictor(untrained_checkpoint(tmp_path / "m.pt"))

    class RGB:
        images = np.zeros((2, 3, 32, 32), np.uint8)
        labels = np.zeros(2, np.int64)
        classes = CLASSES
        source, split, meta = "torchvision:CIFAR10", "test", {}

        def __len__(self):
            return 2

    with pytest.raises(DataError, match="3-channel images but the model takes 1"):
        evaluate_predictor(pr, RGB())
