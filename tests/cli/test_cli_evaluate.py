"""``python -m glyphcore evaluate`` and ``predict``: what a user reads on the terminal."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from glyphcore.cli import main
from glyphcore.frame import CLASSES
from glyphcore.paths import REPO_ROOT
from glyphcore.testing import letter_strokes, render_canvas, untrained_checkpoint


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A run folder holding an (untrained) seed_cnn best.pt, in a temporary runs folder."""
    runs = tmp_path / "runs"
    d = runs / "cli-run"
    d.mkdir(parents=True)
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(runs))
    (d / "config.json").write_text(json.dumps({"data": "glyphs-52", "model": "seed_cnn"}))
    (d / "status.json").write_text(json.dumps({"state": "done"}))
    untrained_checkpoint(d / "best.pt")
    return d


@pytest.fixture
def images(tmp_path):
    """Two drawn letters saved as PNG (the canvas's RGBA and a black-on-white RGB), an empty canvas,
    and a text file."""
    a = tmp_path / "A.png"
    Image.fromarray(render_canvas(letter_strokes("A")), "RGBA").save(a)
    g = tmp_path / "g.png"
    Image.fromarray(render_canvas(letter_strokes("g"), style="black_on_white")[..., :3], "RGB").save(g)
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((280, 280, 4), np.uint8), "RGBA").save(empty)
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    return {"A": a, "g": g, "empty": empty, "txt": txt}


def test_predict_json_prints_one_object_per_image(run, images, capsys):
    rc = main(["predict", "--run", "cli-run", "--json", "--topk", "5", str(images["A"]), str(images["g"])])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0 and len(out) == 2
    for line, path in zip(out, (images["A"], images["g"])):
        obj = json.loads(line)
        assert obj["file"] == str(path)
        assert obj["pred"] in CLASSES and obj["pred"] == obj["topk"][0][0]
        assert len(obj["topk"]) == 5
        probs = [p for _, p in obj["topk"]]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_predict_text_and_a_run_folder(run, images, capsys):
    assert main(["predict", "--run", str(run), "--topk", "3", str(images["A"])]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"{images['A']}: ") and line.count("%") == 3


def test_predict_refuses_empty_and_non_images_but_answers_the_rest(run, images, capsys):
    rc = main(["predict", "--run", "cli-run", "--json", str(images["empty"]), str(images["A"]), str(images["txt"])])
    cap = capsys.readouterr()
    lines = [json.loads(x) for x in cap.out.strip().splitlines()]
    assert rc == 2
    assert "nothing is drawn" in lines[0]["error"] and "pred" not in lines[0]
    assert lines[1]["pred"] in CLASSES
    assert "not an image" in lines[2]["error"]
    assert "error: " in cap.err and "Traceback" not in cap.err


def test_unknown_run_and_missing_checkpoint_are_clear_errors(run, images, capsys, tmp_path):
    assert main(["predict", "--run", "nope", str(images["A"])]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
    (run / "best.pt").unlink()
    assert main(["predict", "--run", "cli-run", str(images["A"])]) == 2
    assert "has no best.pt yet" in capsys.readouterr().err
    assert main(["evaluate", "cli-run"]) == 2
    assert "has no best.pt yet" in capsys.readouterr().err


@pytest.mark.slow
def test_the_module_entry_point_runs_predict(run, images):
    """The real command line, in a fresh process (what the README shows)."""
    proc = subprocess.run(
        [sys.executable, "-m", "glyphcore", "predict", "--run", str(run), "--json", str(images["A"])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["file"] == str(images["A"])


def test_evaluate_prints_the_accuracy_line_and_confusions_and_writes_eval(tiny_glyphs, tmp_path, monkeypatch, capsys):
    from tiny_runs import tiny_run

    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(runs_dir))
    d = tiny_run(runs_dir, "tiny")
    assert main(["evaluate", "tiny", "--split", "test", "--top", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Accuracy of the network on the 208 test images: ") and out[0].endswith("%")
    assert out[1].startswith("case-insensitive: ")
    summary = json.loads((d / "eval" / "test" / "summary.json").read_text())
    assert summary["accuracy_line"] == out[0]
    pairs = summary["most_confused"][:5]
    if pairs:
        assert out[2] == "most confused (actual -> predicted: count):"
        assert out[3 : 3 + len(pairs)] == [f"  {a} -> {b}: {c}" for a, b, c in pairs]
    assert out[-1] == f"results written to {d / 'eval' / 'test'}" or out[-1].startswith(
        f"results written to {d / 'eval' / 'test'}, "
    )
    # the second time it is read back
    assert main(["evaluate", str(d)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"results read from {d / 'eval' / 'test'}"
    assert main(["evaluate", "tiny", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy_line"] == out[0]
