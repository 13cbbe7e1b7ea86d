"""Image composition for the app: uint8 / RGB arrays ready for ``st.image`` (pure numpy)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["image_grid", "class_means", "saliency_overlay", "feature_map_grid", "guide_lines_image"]


def image_grid(
    images: np.ndarray,
    ncols: int = 10,
    *,
    pad: int = 2,
    pad_value: int = 90,
    scale: int = 1,
) -> np.ndarray:
    """Tile images into one picture for ``st.image``.

    Args:
        images: uint8 N x C x H x W (C = 1 or 3), or N x H x W; float input in [0, 1] is scaled.
        ncols: images per row (fewer when N is smaller).
        pad: pixels of border between tiles.
        pad_value: grey level of the border (0-255), so that black glyph backgrounds stay apart.
        scale: integer nearest-neighbour upscale of each tile (28 px MNIST digits look tiny).

    Returns:
        uint8 array rows x cols (C = 1) or rows x cols x 3 (C = 3); a 1 x 1 black image when N = 0.
    """
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"image_grid expects N x C x H x W or N x H x W images, got shape {x.shape}")
    if x.dtype != np.uint8:
        x = np.clip(np.rint(x.astype(np.float32) * 255.0), 0, 255).astype(np.uint8)
    n, c, h, w = x.shape
    if n == 0:
        return np.zeros((1, 1), np.uint8)
    if scale > 1:
        x = x.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    out = np.full((c, nrows * (h + pad) + pad, ncols * (w + pad) + pad), pad_value, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[:, top : top + h, left : left + w] = x[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def class_means(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    *,
    max_per_class: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """The mean image of each class, from at most ``max_per_class`` random samples per class.

    Reads only the chosen rows, so a memory-mapped 70k-image array is never copied whole.

    Args:
        images: uint8 N x C x H x W (may be a read-only memmap).
        labels: int N.
        num_classes: K; a class without samples gets a black image.
        max_per_class: samples averaged per class (200 gives a smooth mean in well under a second).
        seed: which samples are drawn.

    Returns:
        uint8 K x C x H x W.
    """
    rng = np.random.default_rng(seed)
    n, c, h, w = images.shape
    out = np.zeros((num_classes, c, h, w), np.uint8)
    labels = np.asarray(labels)
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        if idx.size == 0:
            continue
        if idx.size > max_per_class:
            idx = np.sort(rng.choice(idx, max_per_class, replace=False))
        out[k] = np.rint(images[idx].astype(np.float32).mean(axis=0)).astype(np.uint8)
    return out


def saliency_overlay(image: np.ndarray, saliency: np.ndarray, *, alpha: float = 0.6, scale: int = 3) -> np.ndarray:
    """The model's input in grey with a saliency heat map on top, as RGB for ``st.image``.

    Args:
        image: H x W (or 1 x H x W) input, uint8 or float in [0, 1].
        saliency: H x W non-negative importance (any scale; normalised here to its maximum).
        alpha: opacity of the heat at its strongest.
        scale: integer nearest-neighbour upscale (a 100 px input is small on screen).

    Returns:
        uint8 (H*scale) x (W*scale) x 3.
    """
    img = np.asarray(image, dtype=np.float64).squeeze()
    if img.max() > 1.0:
        img = img / 255.0
    sal = np.abs(np.asarray(saliency, dtype=np.float64).squeeze())
    if sal.shape != img.shape:
        raise ValueError(f"saliency of shape {sal.shape} does not match the image {img.shape}")
    sal = sal / sal.max() if sal.max() > 0 else sal
    # a black-red-yellow ramp ("hot"): 0 -> transparent, 1 -> yellow
    heat = np.stack([np.clip(3 * sal, 0, 1), np.clip(3 * sal - 1, 0, 1), np.clip(3 * sal - 2, 0, 1)], axis=-1)
    grey = np.repeat(img[..., None] * 0.7, 3, axis=-1)
    a = alpha * np.sqrt(sal)[..., None]
    out = np.clip(grey * (1 - a) + heat * a, 0, 1)
    out = np.rint(out * 255).astype(np.uint8)
    if scale > 1:
        out = out.repeat(scale, axis=0).repeat(scale, axis=1)
    return out


def feature_map_grid(maps: np.ndarray, *, ncols: int = 8, max_maps: int = 64, scale: int = 1) -> np.ndarray:
    """Feature maps of one layer (C x H x W floats), each stretched to its own min..max, tiled.

    Args:
        maps: C x H x W activations of one image.
        ncols: maps per row.
        max_maps: show at most this many channels (the first ones).
        scale: integer upscale of each map (deep layers are a few pixels wide).
    """
    m = np.asarray(maps, dtype=np.float32)[:max_maps]
    lo = m.min(axis=(1, 2), keepdims=True)
    hi = m.max(axis=(1, 2), keepdims=True)
    norm = np.divide(m - lo, hi - lo, out=np.zeros_like(m), where=hi > lo)
    return image_grid(np.rint(norm * 255).astype(np.uint8), ncols=ncols, scale=scale)


def guide_lines_image(rows: Mapping[str, float], size: int, *, background: int = 0) -> np.ndarray:
    """The Draw canvas's background: guide lines on a flat background, RGB uint8 size x size x 3.

    Args:
        rows: guide name -> row in px (``"cap"``, ``"x_height"``, ``"baseline"``), e.g. from
            ``glyphcore.frame.guide_rows``.
        size: canvas side in px.
        background: grey level of the background (0 = black, like the glyphs).
    """
    img = np.full((size, size, 3), background, np.uint8)
    colours = {"cap": (70, 130, 220), "x_height": (90, 90, 90), "baseline": (220, 80, 60)}
    for name, row in rows.items():
        r = int(round(row))
        colour = colours.get(name, (120, 120, 120))
        if name == "x_height":  # dashed: a weaker guide than the cap line and baseline
            for x0 in range(0, size, 12):
                img[r, x0 : x0 + 6] = colour
        else:
            img[max(r - 1, 0) : r + 1] = colour
    return img
