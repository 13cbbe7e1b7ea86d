"""The ``glyphcore`` command itself (glyphcore.cli.main): every sub-command is there with a handler,
help never imports torch, a GlyphError is one ``error:`` line and exit code 2, and the console
script is installed."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from glyphcore.cli import build_parser, main

COMMANDS = {
    "data": {"build", "info", "export", "show", "fetch"},
    "train": None,
    "recipes": {"list", "show", "download", "launch"},
    "runs": {"list", "show", "cancel", "resume", "delete", "export-tb"},
    "sweep": {"start", "list", "show", "cancel", "resume"},
    "compare": None,
    "models": {"list", "summary", "download"},
    "evaluate": None,
    "predict": None,
    "export": None,
    "calibrate": None,
}


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


def _python(args: list[str], env: dict | None = None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}, **kw
    )


def test_every_sub_command_is_registered_with_a_handler():
    top = _subcommands(build_parser())
    assert set(top) == set(COMMANDS)
    for name, actions in COMMANDS.items():
        inner = _subcommands(top[name])
        assert set(inner) == (actions or set()), name
        for leaf_name, leaf in (inner or {name: top[name]}).items():
            assert callable(leaf.get_default("func")), f"{name} {leaf_name} has no handler"


def test_help_lists_every_command_and_imports_no_torch():
    code = (
        "import contextlib, io, json, sys\n"
        "from glyphcore.cli import build_parser, main\n"
        "build_parser()\n"
        "after_build = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "helps = {}\n"
        "for argv in ([], ['train'], ['runs'], ['runs', 'resume'], ['data', 'build'], ['models', 'summary'],\n"
        "             ['evaluate'], ['predict'], ['recipes'], ['recipes', 'show']):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        try:\n"
        "            main([*argv, '--help'])\n"
        "        except SystemExit as e:\n"
        "            code = e.code\n"
        "    helps[' '.join(argv)] = [code, out.getvalue()]\n"
        "after_help = sorted(m for m in sys.modules if m.split('.')[0] == 'torch')\n"
        "print(json.dumps({'after_build': after_build, 'after_help': after_help, 'helps': helps}))\n"
    )
    done = _python(["-c", code])
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["after_build"] == [] and got["after_help"] == []
    for argv, (code, text) in got["helps"].items():
        assert code == 0 and text.startswith("usage: glyphcore"), argv
    top = got["helps"][""][1]
    assert all(re.search(rf"^    {name}\s", top, re.M) for name in COMMANDS), top
    assert "--batch-size" in got["helps"]["train"][1]
    resume = got["helps"]["runs resume"][1]  # a resumed run keeps its settings: only the runtime ones
    assert "--epochs" in resume and "--batch-size " not in resume and "--lr" not in resume


def test_a_glyph_error_is_one_line_and_exit_code_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(tmp_path / "runs"))
    assert main(["runs", "show", "ghost"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: no run 'ghost'") and err.count("\n") == 1
    # the same through the module entry point: no traceback reaches the user
    done = _python(["-m", "glyphcore", "runs", "cancel", "ghost"], env={"GLYPH_RUNS_DIR": str(tmp_path / "runs")})
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: no run 'ghost'") and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1


def test_a_missing_or_unknown_command_is_a_usage_error():
    for argv, message in (([], "the following arguments are required: COMMAND"), (["fly"], "invalid choice: 'fly'")):
        done = _python(["-m", "glyphcore", *argv])
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_the_glyphcore_console_script_is_installed():
    (entry,) = [e for e in metadata.entry_points(group="console_scripts") if e.name == "glyphcore"]
    assert entry.value == "glyphcore.cli:main"
    script = Path(sys.executable).parent / "glyphcore"
    if not script.is_file():
        pytest.fail(f"{script} is missing: install the package (pip install -e .) to get the glyphcore command")
    done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: glyphcore")
    assert all(re.search(rf"^    {name}\s", done.stdout, re.M) for name in COMMANDS)
