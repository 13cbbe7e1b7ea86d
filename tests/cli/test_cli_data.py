"""``python -m glyphcore data ...`` on the tiny data set."""

from __future__ import annotations

import pytest
from PIL import Image

from glyphcore.cli import main


@pytest.mark.parametrize("action", ["build", "info", "export", "show", "fetch"])
def test_every_data_command_has_help(action, capsys):
    with pytest.raises(SystemExit) as e:
        main(["data", action, "--help"])
    assert e.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_build_if_missing_leaves_a_ready_data_set_alone(tiny_glyphs, capsys):
    before = (tiny_glyphs / "manifest.json").stat().st_mtime_ns
    assert main(["data", "build", "--if-missing"]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (tiny_glyphs / "manifest.json").stat().st_mtime_ns == before


@pytest.mark.slow
def test_build_writes_a_data_set_with_a_progress_bar(tmp_path, capsys):
    out = tmp_path / "g52"
    rc = main(
        [
            "data",
            "build",
            "--out",
            str(out),
            "--per-class",
            "2",
            "--seen-per-class",
            "0",
            "--no-source",
            "packages",
            "--seed",
            "3",
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    assert "100%" in captured.err and "[####" in captured.err
    assert "built glyphs-52" in captured.out and "design families" in captured.out
    assert (out / "manifest.json").is_file() and not (out / "seen_images.npy").exists()


def test_info_show_and_export(tiny_glyphs, tmp_path, capsys):
    assert main(["data", "info", "--fonts"]) == 0
    out = capsys.readouterr().out
    assert "train 520" in out and "Hershey Sans" in out and "skipped" in out
    png = tmp_path / "grid.png"
    assert main(["data", "show", "--split", "valid", "--n", "20", "--cols", "5", "--out", str(png)]) == 0
    with Image.open(png) as im:
        assert im.width > 5 * 100 and im.height > 4 * 100
    assert main(["data", "export", str(tmp_path / "course"), "--splits", "test"]) == 0
    assert len(list((tmp_path / "course" / "test").rglob("*.npy"))) == 208


def test_errors_are_messages_not_tracebacks(tmp_path, capsys):
    assert main(["data", "info", "--source", f"course:{tmp_path / 'missing'}"]) == 2
    assert "error:" in capsys.readouterr().err
