"""augment_batch and jitter_batch: an independent draw per sample, each jitter inside its range (measured
on the ink: mass, centre, orientation), reproducible with a generator, any image size and colour."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glyphcore.data import augment_batch, load_dataset
from glyphcore.data.augment import JITTER, JitterRanges, jitter_batch
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


def _disc(n: int, h: int = 100, w: int = 100, r: float = 8.0, channels: int = 1) -> torch.Tensor:
    """``n`` copies of an anti-aliased white disc of radius ``r`` px at the image centre."""
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")  # pixel centres
    d = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2).sqrt()
    return (r + 0.5 - d).clamp(0, 1).expand(n, channels, h, w).clone()


def _moments(y: torch.Tensor, level: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per sample: ink mass, ink centre (x, y) in px from the image centre, and the orientation of
    the ink in degrees (0 = along x); ``level``: count only pixels above it, as ink of value 1."""
    ink = y[:, 0].double()
    if level is not None:
        ink = (ink > level).double()
    n, h, w = ink.shape
    yy, xx = torch.meshgrid(torch.arange(h) + 0.5 - h / 2, torch.arange(w) + 0.5 - w / 2, indexing="ij")
    mass = ink.sum((1, 2))
    cx, cy = (ink * xx).sum((1, 2)) / mass, (ink * yy).sum((1, 2)) / mass
    dx, dy = xx - cx[:, None, None], yy - cy[:, None, None]
    mu20, mu02, mu11 = (ink * dx * dx).sum((1, 2)), (ink * dy * dy).sum((1, 2)), (ink * dx * dy).sum((1, 2))
    angle = torch.rad2deg(0.5 * torch.atan2(2 * mu11, mu20 - mu02))
    return mass, torch.stack([cx, cy], 1), angle


def test_the_shift_stays_in_its_range_and_uses_it():
    x = _disc(64)
    y = jitter_batch(x, JitterRanges(shift=0.07), torch.Generator().manual_seed(0))
    mass, centre, _ = _moments(y)
    limit = 0.07 * 100  # px: the shift is a fraction of the image side
    assert centre.abs().max() <= limit + 0.05
    assert (centre.abs().amax(0) > 0.7 * limit).all()  # both axes use most of the range
    assert torch.cdist(centre, centre)[~torch.eye(64, dtype=torch.bool)].min() > 0  # one draw per sample
    torch.testing.assert_close(mass, _moments(x)[0], rtol=1e-3, atol=0)  # moving adds or loses no ink


def test_the_scale_stays_in_its_range_about_the_centre():
    lo, hi = 0.86, 1.12
    x = _disc(64)
    y = jitter_batch(x, JitterRanges(scale=(lo, hi)), torch.Generator().manual_seed(1))
    mass, centre, _ = _moments(y)
    ratio = mass / _moments(x)[0]  # the area scales with the square of the size
    assert ratio.min() >= lo**2 * 0.98 and ratio.max() <= hi**2 * 1.02
    assert ratio.min() < lo**2 * 1.05 and ratio.max() > hi**2 * 0.95
    assert centre.abs().max() < 0.05


def test_the_rotation_stays_in_its_range():
    x = torch.zeros(64, 1, 100, 100)
    x[:, :, 48:52, 20:80] = 1.0  # a horizontal bar through the centre
    y = jitter_batch(x, JitterRanges(rotate_deg=10.0), torch.Generator().manual_seed(2))
    _, _, angle = _moments(y)
    assert angle.abs().max() <= 10.0 + 0.3 and angle.abs().max() > 8.0


@pytest.mark.parametrize("strength", ["light", "strong"])
def test_a_training_augmentation_keeps_the_glyph_near_where_it_was(strength):
    ranges = JITTER[strength]
    x = _disc(64)
    y = augment_batch(x, strength, torch.Generator().manual_seed(3))
    assert y.shape == x.shape and y.dtype == x.dtype and y.min() >= 0 and y.max() <= 1
    mass, centre, _ = _moments(y, level=0.5)  # above the noise (std <= 0.05): the disc alone
    # about the centre, a disc moves only by the shift; 1 px for the stroke weight and the blur
    assert centre.abs().max() <= ranges.shift * 100 + 1.0
    base = _moments(x, level=0.5)[0]
    assert (mass / base).min() >= ranges.scale[0] ** 2 * 0.6 and (mass / base).max() <= ranges.scale[1] ** 2 * 1.6


def test_seeded_generator_reproduces_and_none_is_identity(tiny_glyphs):
    x = _glyphs(tiny_glyphs, 8)
    a = augment_batch(x, "light", torch.Generator().manual_seed(3))
    b = augment_batch(x, "light", torch.Generator().manual_seed(3))
    c = augment_batch(x, "light", torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert augment_batch(x, "none") is x


def test_the_geometry_follows_the_image_size_and_moves_every_channel_together():
    g = torch.Generator().manual_seed(4)
    # shifts are fractions of each side: 2.8 px across and 1.7 px down a 24 x 40 image
    y = jitter_batch(_disc(64, 24, 40, r=4.0), JitterRanges(shift=0.07), g)
    centre = _moments(y)[1]
    assert centre[:, 0].abs().max() <= 0.07 * 40 + 0.05 and centre[:, 1].abs().max() <= 0.07 * 24 + 0.05
    assert centre[:, 0].abs().max() > 0.07 * 24 + 0.2  # wider than the height's range allows
    # a colour image: one transform per sample, the same for its three channels
    geometry = JitterRanges(rotate_deg=10.0, shift=0.05, scale=(0.9, 1.1))
    rgb = jitter_batch(_disc(8, 32, 32, r=5.0, channels=3), geometry, g)
    assert torch.equal(rgb[:, 0], rgb[:, 1]) and torch.equal(rgb[:, 0], rgb[:, 2])
    assert not torch.equal(rgb[0], rgb[1])
    assert augment_batch(torch.rand(4, 3, 32, 32), "light", g).shape == (4, 3, 32, 32)


def test_bad_strength_or_input():
    with pytest.raises(ConfigError, match="strength"):
        augment_batch(torch.rand(2, 1, 8, 8), "extreme")
    with pytest.raises(ConfigError, match="float"):
        augment_batch(torch.zeros(2, 1, 8, 8, dtype=torch.uint8), "light")
