"""What every activation layer of a model produces over a batch: the Activations page's measurements.

Each activation module's output is read through the one batched forward pass
(:func:`glyphcore.infer.forward.run_batches`, :meth:`Predictor.run` for a trained run) as a
``"layer:<name>"`` feature, one batch at a time: a first pass finds each layer's range, mean and
per-unit maximum, a second counts the histogram, so memory stays at one batch's activations. What
the numbers mean is described in :mod:`glyphcore.models.activation_stats`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from glyphcore.errors import ConfigError
from glyphcore.infer.forward import LAYER_PREFIX, Outputs, layer_feature, run_batches
from glyphcore.infer.predictor import load_predictor
from glyphcore.models.activation_stats import (
    DEAD_FAMILY,
    SATURATING,
    SIGMOID_SATURATION,
    TANH_SATURATION,
    LayerActivationStats,
    activation_layers,
)
from glyphcore.models.activations import ACTIVATIONS

__all__ = ["measure_activations", "measure_run_activations"]

# One pass over the images: given a function that takes each batch's outputs, run every batch.
PassRunner = Callable[[Callable[[Outputs], None]], Any]


class _Layer:
    """Running sums of one activation layer's outputs (float64 on the CPU: a handful of numbers per unit)."""

    def __init__(self, kind: str, bins: int) -> None:
        self.kind, self.bins = kind, bins
        self.lo, self.hi, self.sum, self.sq, self.n, self.saturated = float("inf"), float("-inf"), 0.0, 0.0, 0, 0
        self.unit_max: torch.Tensor | None = None
        self.counts: torch.Tensor | None = None
        self.shape: tuple[int, ...] = ()

    def first(self, y: torch.Tensor) -> None:
        """Range, moments, per-unit maximum and saturation of one batch."""
        self.shape = tuple(y.shape[1:])
        self.lo, self.hi = min(self.lo, float(y.min())), max(self.hi, float(y.max()))
        self.sum += float(y.sum(dtype=torch.float64))
        self.sq += float((y.double() ** 2).sum())
        self.n += y.numel()
        # max over the batch and all positions, per unit (channel dim 1)
        per_unit = y.transpose(0, 1).reshape(y.shape[1], -1).amax(dim=1).double()
        self.unit_max = per_unit if self.unit_max is None else torch.maximum(self.unit_max, per_unit)
        if self.kind == "sigmoid":
            self.saturated += int(((y < SIGMOID_SATURATION) | (y > 1 - SIGMOID_SATURATION)).sum())
        elif self.kind == "tanh":
            self.saturated += int((y.abs() > TANH_SATURATION).sum())

    def span(self) -> tuple[float, float]:
        """The histogram's range; a constant layer gets a visible bin around its single value."""
        return (self.lo - 0.5, self.hi + 0.5) if self.hi <= self.lo else (self.lo, self.hi)

    def second(self, y: torch.Tensor) -> None:
        """Histogram counts of one batch over the range the first pass found."""
        lo, hi = self.span()
        c = torch.histc(y, bins=self.bins, min=lo, max=hi).double()
        self.counts = c if self.counts is None else self.counts + c

    def result(self, name: str) -> LayerActivationStats:
        assert self.unit_max is not None and self.counts is not None  # both passes saw this layer
        lo, hi = self.span()
        mean = self.sum / self.n
        units = int(self.unit_max.numel())
        return LayerActivationStats(
            layer=name,
            activation=self.kind,
            shape=self.shape,
            units=units,
            counts=self.counts.numpy(),
            edges=np.linspace(lo, hi, self.bins + 1),
            mean=mean,
            std=max(self.sq / self.n - mean * mean, 0.0) ** 0.5,
            dead_share=float((self.unit_max <= 0).sum()) / units if self.kind in DEAD_FAMILY else None,
            saturated_share=self.saturated / self.n if self.kind in SATURATING else None,
        )


def _layers_of(model: nn.Module) -> list[tuple[str, str]]:
    layers = activation_layers(model)
    if not layers:
        raise ConfigError(
            f"{type(model).__name__} has no activation module from the table "
            f"({', '.join(ACTIVATIONS)}); nothing to measure"
        )
    return layers


def _measure(run_pass: PassRunner, layers: list[tuple[str, str]], bins: int) -> list[LayerActivationStats]:
    """Two passes (range, then histogram) over every activation layer's output."""
    acc = {name: _Layer(kind, bins) for name, kind in layers}

    def feed(step: str) -> Callable[[Outputs], None]:
        def on_batch(out: Outputs) -> None:
            for key, y in out.features.items():  # "layer:<name>" or "layer:<name>#2" for a second call
                getattr(acc[key[len(LAYER_PREFIX) :].split("#")[0]], step)(y)

        return on_batch

    run_pass(feed("first"))
    run_pass(feed("second"))
    # a module defined but never called in forward has no outputs
    return [acc[name].result(name) for name, _ in layers if acc[name].n]


@torch.no_grad()
def measure_activations(
    model: nn.Module, images: torch.Tensor, *, bins: int = 60, batch_size: int = 128
) -> list[LayerActivationStats]:
    """Run ``images`` through ``model`` and measure the output of every activation layer.

    The model is put in eval mode for the measurement (BatchNorm uses its running statistics, as at
    prediction time) and restored to its previous mode afterwards. Histograms span each layer's own
    min..max over the whole batch.

    Args:
        model: any ``nn.Module`` whose activations are modules from the table (functional calls
            such as ``F.relu`` are invisible and are not measured).
        images: the model's input, float N x C x H x W, already scaled as the model expects.
        bins: histogram bins per layer.
        batch_size: images per forward pass.

    Returns:
        One ``LayerActivationStats`` per activation module, in registration order. A module used
        twice in one forward (a shared ``act`` attribute) is measured over all its calls.

    Raises:
        ConfigError: the model has no activation module from the table, or the batch is empty.
    """
    if images.shape[0] == 0:
        raise ConfigError("measure_activations needs at least one image")
    layers = _layers_of(model)
    names = [layer_feature(n) for n, _ in layers]
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    was_training = model.training
    model.eval()
    try:

        def run_pass(on_batch: Callable[[Outputs], None]) -> None:
            chunks = (images[s : s + batch_size].to(device) for s in range(0, images.shape[0], batch_size))
            run_batches(model, chunks, names, on_batch)

        return _measure(run_pass, layers, bins)
    finally:
        model.train(was_training)


def measure_run_activations(
    run_ref: str | os.PathLike,
    *,
    n_images: int = 256,
    split: str = "valid",
    which: str = "best",
    seed: int = 0,
    bins: int = 60,
) -> list[LayerActivationStats]:
    """Measure a trained run's activations over a random batch of its data set's glyphs.

    Args:
        run_ref: a run id, a run folder, ``"starter"`` or a ``.pt`` checkpoint.
        n_images: how many images of the split to send through (fewer when the split is smaller).
        split: the split to draw them from; a source without it falls back to "test", then to
            its first split.
        which: "best" or "last" checkpoint.
        seed: which images are drawn.
        bins: histogram bins per layer.

    Returns:
        See :func:`measure_activations`.

    Raises:
        RunError, CheckpointError: no such run, or no checkpoint yet.
        DataError: the run's data set is not on this machine (the message says how to build it).
        ConfigError: the model has no activation module from the table.
    """
    from glyphcore.data import list_splits, load_dataset

    predictor = load_predictor(run_ref, which)
    source = predictor.data_source
    splits = list_splits(source)
    if split not in splits:
        split = "test" if "test" in splits else splits[0]
    data = load_dataset(source, split)
    n = min(int(n_images), len(data))
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    images = np.asarray(data.images[idx])  # N x C x H x W uint8 (reads only the chosen rows of a memmap)
    if n == 0:
        raise ConfigError("measure_activations needs at least one image")
    layers = _layers_of(predictor.model)
    names = [layer_feature(name) for name, _ in layers]
    return _measure(lambda on_batch: predictor.run(images, names, 128, on_batch), layers, bins)
