"""Fixtures of the run tests: a runs folder of the test's own (GLYPH_RUNS_DIR)."""

from __future__ import annotations

import pytest


@pytest.fixture
def runs_root(tmp_path, monkeypatch):
    root = tmp_path / "runs"
    monkeypatch.setenv("GLYPH_RUNS_DIR", str(root))
    return root
