"""augment_batch: an independent draw per sample, reproducible with a generator, any image size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glyphcore.data import augment_batch, load_dataset
from glyphcore.errors import ConfigError


def _glyphs(tiny_glyphs, n: int) -> torch.Tensor:
    s = load_dataset("glyphs-52", "train")
    return torch.from_numpy(np.array(s.images[:n])).float() / 255


def test_each_sample_gets_its_own_draw(tiny_glyphs):
    x = _glyphs(tiny_glyphs, 1).repeat(16, 1, 1, 1)  # 16 copies of one glyph
    for strength in ("light", "strong"):
        y = augment_batch(x, strength, torch.Generator().manual_seed(0))
        flat = y.flatten(1)
        diffs = torch.cdist(flat, flat)
        off_diagonal = diffs[~torch.eye(16, dtype=torch.bool)]
        assert off_diagonal.min() > 0.5  # no two copies came out alike


def test_shape_range_and_ink_are_kept(tiny_glyphs):
    x = _glyphs(tiny_glyphs, 32)
    y = augment_batch(x, "strong", torch.Generator().manual_seed(1))
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    ink_in, ink_out = x.sum(dim=(1, 2, 3)), y.sum(dim=(1, 2, 3))
    assert ((ink_out / ink_in) > 0.5).all() and ((ink_out / ink_in) < 3.0).all()  # a glyph, not a blot


def test_seeded_generator_reproduces_and_none_is_identity(tiny_glyphs):
    x = _glyphs(tiny_glyphs, 8)
    a = augment_batch(x, "light", torch.Generator().manual_seed(3))
    b = augment_batch(x, "light", torch.Generator().manual_seed(3))
    c = augment_batch(x, "light", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert augment_batch(x, "none") is x


def test_other_sizes_and_colour():
    g = torch.Generator().manual_seed(0)
    assert augment_batch(torch.rand(4, 1, 28, 28), "strong", g).shape == (4, 1, 28, 28)
    assert augment_batch(torch.rand(4, 3, 32, 32), "light", g).shape == (4, 3, 32, 32)
    assert augment_batch(torch.rand(2, 1, 24, 40), "light", g).shape == (2, 1, 24, 40)


def test_bad_strength_or_input():
    with pytest.raises(ConfigError, match="strength"):
        augment_batch(torch.rand(2, 1, 8, 8), "extreme")
    with pytest.raises(ConfigError, match="float"):
        augment_batch(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "light")
