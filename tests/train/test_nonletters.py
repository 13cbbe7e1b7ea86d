"""Outlier exposure: the pool of generated non-letters, each step's draw, and its effect on a real training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glyphcore.frame import CLASSES
from glyphcore.infer import nonletter_pool as pool_mod
from glyphcore.infer.preprocess import preprocess
from glyphcore.testing import CANVAS_STYLES, nonletter_strokes, render_canvas
from glyphcore.train import fit, make_config
from glyphcore.train import nonletters as nl
from glyphcore.train.config import ConfigError


def test_it_applies_to_letters_in_the_glyph_frame_only():
    assert pool_mod.applies(list(CLASSES), [1, 100, 100])
    assert pool_mod.applies(["a", "b", "C"], (1, 100, 100))  # a subset of the letters (a course folder)
    assert pool_mod.applies(None, (1, 100, 100))  # classes not known: the frame decides
    assert not pool_mod.applies([str(d) for d in range(10)], [1, 100, 100])  # digits
    assert not pool_mod.applies(list(CLASSES), [3, 100, 100])  # colour images
    assert not pool_mod.applies(list(CLASSES), [1, 28, 28])  # another size


def test_the_pool_is_made_once_kept_and_remade_when_damaged(tmp_path, monkeypatch):
    monkeypatch.delenv("GLYPH_CACHE_DIR")  # kept in the data folder by default
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path))
    pool = pool_mod.non_letter_pool(24)
    assert pool.shape == (24, 1, 100, 100) and pool.dtype == np.uint8
    assert all((f >= 128).sum() > 0 for f in pool)  # every one has ink: nothing empty is trained on
    assert len({f.tobytes() for f in pool}) == 24  # 24 different drawings
    path = next((tmp_path / "non-letters").glob("*.npy"))
    stamp = path.stat().st_mtime_ns
    assert np.array_equal(pool_mod.non_letter_pool(24), pool)
    assert path.stat().st_mtime_ns == stamp  # read, not made again
    path.write_bytes(b"not a pool at all")
    assert np.array_equal(pool_mod.non_letter_pool(24), pool)  # the same pool, made again
    assert np.array_equal(np.load(path), pool)  # and the damaged file replaced


def test_the_cache_folder_moves_the_pool_out_of_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("GLYPH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GLYPH_CACHE_DIR", str(tmp_path / "cache"))
    pool = pool_mod.non_letter_pool(6)
    assert np.array_equal(np.load(tmp_path / "cache" / "non-letters" / f"pool-v{pool_mod.POOL_VERSION}-6.npy"), pool)
    assert not (tmp_path / "data").exists()


def test_each_step_draws_the_same_non_letters_on_a_resume_and_processes_share_them():
    pool = np.random.default_rng(0).integers(0, 256, size=(50, 1, 100, 100), dtype=np.uint8)
    draws = nl.NonLetters(batch_size=40, device=torch.device("cpu"), pool=pool)
    assert draws.per_batch == 10  # a quarter of the letters
    a, b = draws.batch(seed=3, step=7), draws.batch(seed=3, step=7)
    halves = [draws.batch(seed=3, step=7, shard=lambda i, r=r: i[r::2]) for r in (0, 1)]
    assert sorted(map(bytes, a.numpy().reshape(10, -1))) == sorted(
        map(bytes, torch.cat(halves).numpy().reshape(10, -1))
    )
    assert a.shape == (10, 1, 100, 100) and torch.equal(a, b)
    assert not torch.equal(a, draws.batch(seed=3, step=8)) and not torch.equal(a, draws.batch(seed=4, step=7))
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0


def test_the_exposure_loss_is_least_for_the_uniform_answer():
    k = 52
    uniform = nl.exposure_loss(torch.zeros(4, k))
    assert float(uniform) == pytest.approx(np.log(k))  # the cross-entropy to uniform of the uniform answer
    sure = torch.zeros(4, k)
    sure[:, 0] = 8.0
    assert float(nl.exposure_loss(sure)) > float(uniform) + 1.0


def test_the_weight_is_checked():
    with pytest.raises(ConfigError, match="outlier_exposure"):
        make_config("quick", outlier_exposure=-0.1)
    with pytest.raises(ConfigError, match="outlier_exposure"):
        make_config("quick", outlier_exposure=float("nan"))


def _max_probability(model: torch.nn.Module, frames: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        return float(model(frames).softmax(1).max(1).values.mean())


@pytest.mark.slow
def test_a_run_with_outlier_exposure_is_less_sure_of_non_letters_it_never_saw(tiny_glyphs, monkeypatch):
    """Two real runs on the tiny glyphs, equal but for the exposure: the exposed one spreads its answer
    on generated non-letters of other seeds than the pool's, and still learns the letters."""
    monkeypatch.setattr(pool_mod, "POOL_SIZE", 200)
    unseen = [
        preprocess(render_canvas(nonletter_strokes(kind, seed=s), style=CANVAS_STYLES[s % 3]))
        for kind in pool_mod.EXPOSURE_KINDS
        for s in range(4)
    ]
    frames = torch.cat([p.tensor for p in unseen if not p.empty])
    results = {}
    for weight in (0.0, 1.0):
        config = make_config(
            "quick", batch_size=40, epochs=8, threads=1, device="cpu", seed=0, amp="off", outlier_exposure=weight
        )
        results[weight] = fit(config)
    plain, exposed = (_max_probability(results[w].model, frames) for w in (0.0, 1.0))
    assert exposed < 0.6 * plain, (plain, exposed)
    assert results[1.0].best_val_acc >= results[0.0].best_val_acc - 0.15  # tiny data: 8 points apart here
    assert results[1.0].history[-1]["train_loss"] < np.log(52)  # the curve is the letters' loss, not the sum
