"""Fault injection: the parts of a checkpoint that change an answer besides the weights (calibration
temperature, letter thresholds, class list, model settings), weights of the wrong type, and
predict's JSON. A real trained run (lenet, 2 epochs on tiny synthetic data, calibrated at the end of
training); changed files are written with torch.save, as a damaged copy or an editor would leave them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from shapes_data import lenet_train_argv, write_course_layout

from glyphcore import cli
from glyphcore.checkpoint import TEMPERATURE_RANGE, load_checkpoint
from glyphcore.errors import CheckpointError
from glyphcore.infer import load_predictor


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parts")
    course = f"course:{write_course_layout(root / 'course', {'train': 40, 'valid': 20})}"
    assert cli.main(lenet_train_argv(course, root / "run", 2, "--lr", "2e-3")) == 0
    return root / "run"


@pytest.fixture
def ckpt_file(trained, tmp_path) -> Path:
    path = tmp_path / "best.pt"
    path.write_bytes((trained / "best.pt").read_bytes())
    return path


def _raw(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _glyph(path: Path) -> Path:
    img = np.zeros((100, 100), np.uint8)
    img[20:80, 30:38] = 255
    img[20:28, 30:70] = 255
    Image.fromarray(img).save(path)
    return path


def test_the_trained_checkpoint_is_calibrated_and_fully_covered(ckpt_file):
    ckpt = load_checkpoint(ckpt_file)
    assert isinstance(ckpt.get("calibration"), dict) and ckpt["unverified"] == []


@pytest.mark.parametrize(
    ("part", "change"),
    [
        ("temperature", lambda c: c["calibration"].__setitem__("temperature", c["calibration"]["temperature"] * 1.5)),
        ("letter threshold", lambda c: c["calibration"]["letter"].__setitem__("min_confidence", 0.99)),
        ("class list", lambda c: c.__setitem__("classes", list(reversed(c["classes"])))),
        ("model settings", lambda c: c["model_args"].__setitem__("dropout", 0.9)),
    ],
)
def test_a_changed_answer_part_is_refused(ckpt_file, part, change):
    ckpt = _raw(ckpt_file)
    change(ckpt)
    torch.save(ckpt, ckpt_file)
    with pytest.raises(CheckpointError, match="damaged: its class list, model settings or calibration"):
        load_checkpoint(ckpt_file)


def test_an_older_file_verifies_what_it_has_and_names_the_rest(ckpt_file):
    ckpt = _raw(ckpt_file)
    del ckpt["content_sha256"]
    torch.save(ckpt, ckpt_file)
    loaded = load_checkpoint(ckpt_file)
    assert "calibration" in loaded["unverified"] and "classes" in loaded["unverified"]
    assert "state_dict" not in loaded["unverified"]
    load_predictor(ckpt_file)  # still usable


@pytest.mark.parametrize("temperature", [1e-300, 1e300, 0.0, -1.0, float("nan"), True])
def test_a_temperature_outside_its_range_is_refused_even_in_an_older_file(ckpt_file, tmp_path, temperature, capsys):
    ckpt = _raw(ckpt_file)
    del ckpt["content_sha256"]
    ckpt["calibration"]["temperature"] = temperature
    torch.save(ckpt, ckpt_file)
    with pytest.raises(CheckpointError, match="temperature"):
        load_checkpoint(ckpt_file)
    code = cli.main(["predict", "--run", str(ckpt_file), str(_glyph(tmp_path / "g.png")), "--json"])
    out = capsys.readouterr()
    assert code == 2 and "NaN" not in out.out
    [err] = out.err.strip().splitlines()
    assert "temperature" in err


def test_the_fitted_temperature_stays_in_its_range():
    from glyphcore.infer.calibration import fit_temperature

    labels = torch.arange(8) % 4
    perfect = torch.nn.functional.one_hot(labels, 4).float() * 1e6  # degenerate: fits toward T -> 0
    flat = torch.zeros(8, 4)  # no information: any T, the search runs to its edge
    for logits in (perfect, flat, -perfect):
        t = fit_temperature(logits, labels)
        assert TEMPERATURE_RANGE[0] <= t <= TEMPERATURE_RANGE[1]


@pytest.mark.parametrize("dtype", [torch.complex64, torch.int8, torch.bool, torch.uint8])
def test_weights_of_a_type_no_model_has_are_refused(ckpt_file, dtype):
    ckpt = _raw(ckpt_file)
    key = next(k for k, v in ckpt["state_dict"].items() if v.is_floating_point())
    w = ckpt["state_dict"][key]
    if dtype is torch.complex64:
        new = torch.complex(w, torch.full_like(w, float("nan")))
    else:
        new = w.to(dtype)
    ckpt["state_dict"][key] = new
    del ckpt["state_dict_sha256"], ckpt["content_sha256"]  # as a file from before the sums
    torch.save(ckpt, ckpt_file)
    with pytest.raises(CheckpointError, match=str(dtype).replace("torch.", "")):
        load_checkpoint(ckpt_file)


def test_predict_json_is_strict_json(ckpt_file, tmp_path, capsys):
    assert cli.main(["predict", "--run", str(ckpt_file), str(_glyph(tmp_path / "g.png")), "--json"]) == 0
    for line in capsys.readouterr().out.strip().splitlines():
        json.loads(line, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
