"""Model export: each format loads back in its own runtime (onnxruntime, torch.export.load, safetensors
+ create_model) and names the same classes as the checkpoint's predictor on a batch of glyphs; an
existing file is never replaced without the flag."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch

from glyphcore.errors import ConfigError, RunError
from glyphcore.infer import run_export
from glyphcore.models import export

pytestmark = pytest.mark.slow  # trains a tiny run

ATOL = 1e-4  # logits of an exported model vs the checkpoint's (float32 kernels differ in summation order)


@pytest.fixture
def run_dir(tiny_glyphs, tmp_path, monkeypatch):
    """A real 2-epoch seed_cnn run on the tiny glyphs, in this test's runs folder."""
    from tiny_runs import tiny_run  # tests/tiny_runs.py

    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(runs))
    return tiny_run(runs, "tiny-relu", activation="relu")


@pytest.fixture
def glyphs(tiny_glyphs) -> torch.Tensor:
    """Every validation glyph of the tiny set (held-out fonts): 208 x 1 x 100 x 100 float in [0, 1]."""
    from glyphcore.data import load_dataset
    from glyphcore.infer import frame_to_tensor

    return frame_to_tensor(load_dataset("glyphs-52", "valid").images)


def reference(run_dir, glyphs) -> tuple[np.ndarray, list[str]]:
    from glyphcore.infer import load_predictor

    predictor = load_predictor(run_dir)
    return predictor.logits(glyphs).numpy(), predictor.classes


def assert_same_answers(logits: np.ndarray, ref: np.ndarray) -> None:
    assert logits.shape == ref.shape
    assert (logits.argmax(1) == ref.argmax(1)).all()
    np.testing.assert_allclose(logits, ref, atol=ATOL, rtol=0)


def test_onnx_runs_in_onnxruntime_with_any_batch_size(run_dir, glyphs):
    import onnxruntime as ort

    ref, classes = reference(run_dir, glyphs)
    path = run_export.export_run("tiny-relu", "onnx")
    assert path == run_dir / "export" / "tiny-relu-best.onnx"
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [inp], [out] = session.get_inputs(), session.get_outputs()
    assert (inp.name, out.name) == ("image", "logits")
    assert inp.shape[1:] == [1, 100, 100] and isinstance(inp.shape[0], str)  # a named, free batch axis
    assert_same_answers(session.run(None, {"image": glyphs.numpy()})[0], ref)
    assert_same_answers(session.run(None, {"image": glyphs[:1].numpy()})[0], ref[:1])
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == classes and meta["model_name"] == "seed_cnn"
    assert meta["checkpoint"] == "best.pt" and meta["run"] == "tiny-relu"


def test_pt2_loads_with_torch_export_alone(run_dir, glyphs):
    from glyphcore.infer import load_predictor

    classes = load_predictor(run_dir).classes
    path = run_export.export_run(run_dir, "pt2", which="last")
    assert path.name == "tiny-relu-last.pt2"
    extra = {"glyphcore.json": ""}
    program = torch.export.load(str(path), extra_files=extra)
    with torch.no_grad():
        logits = program.module()(glyphs).numpy()
        one = program.module()(glyphs[:3]).numpy()
    last = load_predictor(run_dir, which="last").logits(glyphs).numpy()
    assert_same_answers(logits, last)
    assert_same_answers(one, last[:3])
    assert json.loads(json.loads(extra["glyphcore.json"])["classes"]) == classes


def test_safetensors_rebuilds_with_create_model_from_its_metadata(run_dir, glyphs, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file

    from glyphcore.models import create_model

    ref, classes = reference(run_dir, glyphs)
    path = run_export.export_run("tiny-relu", "safetensors", out=tmp_path / "weights.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == export.METADATA_FORMAT and json.loads(meta["classes"]) == classes
    assert json.loads(meta["frame"])["size"] == 100
    model = create_model(meta["model_name"], **json.loads(meta["model_args"]))
    model.load_state_dict(load_file(str(path)), strict=True)
    with torch.no_grad():
        assert_same_answers(model.eval()(glyphs).numpy(), ref)


def test_an_existing_file_is_kept_unless_overwrite(run_dir, capsys):
    from safetensors.torch import load_file

    from glyphcore.cli import main

    path = run_export.export_run("tiny-relu", "safetensors")
    before = path.read_bytes()
    weights = load_file(str(path))
    os.utime(path, ns=(1, 1))  # a marker: any rewrite changes it
    with pytest.raises(RunError, match="--overwrite"):
        run_export.export_run("tiny-relu", "safetensors")
    assert main(["export", "tiny-relu", "--format", "safetensors"]) == 2
    assert "exists: pass --overwrite" in capsys.readouterr().err
    assert path.stat().st_mtime_ns == 1 and path.read_bytes() == before
    assert main(["export", "tiny-relu", "--format", "safetensors", "--overwrite"]) == 0
    assert str(path) in capsys.readouterr().out
    assert path.stat().st_mtime_ns > 1  # written again: the same weights
    assert all(torch.equal(v, weights[k]) for k, v in load_file(str(path)).items())
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary file left


def test_fresh_export_reuses_the_file_until_the_checkpoint_changes(run_dir):
    ckpt = run_dir / "best.pt"
    first = run_export.fresh_export("tiny-relu", "safetensors")
    stamp = first.stat().st_mtime_ns
    assert run_export.fresh_export("tiny-relu", "safetensors").stat().st_mtime_ns == stamp  # reused
    later = stamp + 10**9
    os.utime(ckpt, ns=(later, later))  # best.pt saved again after the export
    again = run_export.fresh_export("tiny-relu", "safetensors")
    assert again == first and again.stat().st_mtime_ns > stamp


def test_a_missing_package_names_the_extra_and_writes_nothing(run_dir, monkeypatch):
    row = dataclasses.replace(export.FORMATS["safetensors"], requires=("safetensors", "glyphcore_no_such_package"))
    monkeypatch.setitem(export.FORMATS, "safetensors", row)
    assert export.missing_packages("safetensors") == ["glyphcore_no_such_package"]
    with pytest.raises(ConfigError, match=r"glyphcore_no_such_package.*pip install glyph-explorer\[export\]"):
        run_export.export_run("tiny-relu", "safetensors")
    assert not (run_dir / "export").exists()


def test_unknown_format_lists_the_formats(run_dir):
    with pytest.raises(ConfigError, match="onnx, pt2, safetensors"):
        run_export.export_run("tiny-relu", "pt")


@pytest.mark.parametrize("fmt", list(export.FORMATS))
def test_every_format_in_the_table_loads_back_with_the_same_answers(run_dir, glyphs, fmt):
    row = export.FORMATS[fmt]
    ref, classes = reference(run_dir, glyphs)
    path = run_export.export_run("tiny-relu", fmt)
    assert path.suffix == row.suffix and row.label
    logits_of, meta = row.load(path)
    assert_same_answers(logits_of(glyphs.numpy()), ref)
    assert json.loads(meta["classes"]) == classes and meta["format"] == export.METADATA_FORMAT


def test_the_command_help_lists_every_format_of_the_table(capsys):
    from glyphcore.cli import main

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for row in export.FORMATS.values():
        assert row.name in text and row.help in text


def test_exporting_leaves_the_predictors_model_as_it_was(run_dir, tmp_path):
    """A shared predictor (the app caches one per run) keeps its device and fast memory layout."""
    from glyphcore.infer import load_predictor

    predictor = load_predictor(run_dir / "best.pt", device="cpu")
    # a conv with several input channels: with one, both layouts have the same strides
    conv = next(m for m in predictor.model.modules() if isinstance(m, torch.nn.Conv2d) and m.in_channels > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    export.export_model(predictor, "safetensors", tmp_path / "model.safetensors")
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)  # not converted in place
    assert all(torch.equal(v, before[k]) for k, v in predictor.model.state_dict().items())
