"""Predictor.run: the one batched forward pass, with the inner features a caller names."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from glyphcore.errors import ConfigError
from glyphcore.infer import load_predictor
from glyphcore.infer.forward import PENULTIMATE, layer_feature
from glyphcore.testing import untrained_checkpoint


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return load_predictor(untrained_checkpoint(tmp_path_factory.mktemp("ckpt") / "m.pt", "tiny_conv", seed=3))


def _glyphs(seed: int, n: int = 6) -> np.ndarray:
    """uint8 N x 1 x 100 x 100 noise glyphs, different per seed."""
    return np.random.default_rng(seed).integers(0, 256, (n, 1, 100, 100), dtype=np.uint8)


def _conv(predictor) -> str:
    return next(n for n, m in predictor.model.named_modules() if isinstance(m, torch.nn.Conv2d))


def test_run_returns_logits_and_the_features_asked_for(predictor):
    conv = layer_feature(_conv(predictor))
    x = _glyphs(0, 5)
    out = predictor.run(x, features=(PENULTIMATE, conv), batch_size=2)  # batches of 2: the last one is short
    assert out.logits.shape == (5, len(predictor.classes))
    assert out.features[PENULTIMATE].shape[0] == 5 and out.features[PENULTIMATE].ndim == 2
    assert out.features[conv].shape[0] == 5 and out.features[conv].ndim == 4
    whole = predictor.run(x, features=(PENULTIMATE,), batch_size=64)
    torch.testing.assert_close(whole.logits, out.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(whole.features[PENULTIMATE], out.features[PENULTIMATE], rtol=1e-4, atol=1e-5)
    # the same answers as predict (softmax of the same logits)
    probs = np.stack([p.probs for p in predictor.predict(predictor._batch(torch.from_numpy(x)))])
    np.testing.assert_allclose(probs, out.logits.softmax(1).numpy(), rtol=1e-4, atol=1e-6)
    # no hook outlives the call
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in predictor.model.modules())


def test_run_hands_batches_to_a_reducer_without_keeping_features(predictor):
    conv = layer_feature(_conv(predictor))
    seen: list[int] = []
    out = predictor.run(
        _glyphs(1, 5), features=(conv,), batch_size=2, on_batch=lambda o: seen.append(len(o.features[conv]))
    )
    assert seen == [2, 2, 1] and out.logits.shape[0] == 5 and out.features == {}


def test_run_refuses_unknown_features(predictor):
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        predictor.run(_glyphs(0, 1), features=("layer:nope",))
    with pytest.raises(ConfigError, match="unknown feature 'logits2'"):
        predictor.run(_glyphs(0, 1), features=("logits2",))
    with pytest.raises(ConfigError, match="batch_size"):
        predictor.run(_glyphs(0, 1), batch_size=0)


def test_two_threads_sharing_one_predictor_each_get_their_own_features(predictor):
    conv = layer_feature(_conv(predictor))
    inputs = {k: _glyphs(10 + k, 3 + k) for k in range(2)}  # different images and counts per thread
    alone = {k: predictor.run(x, features=(PENULTIMATE, conv), batch_size=2) for k, x in inputs.items()}
    start = threading.Barrier(2)
    results: dict[int, list] = {0: [], 1: []}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            start.wait()
            for _ in range(8):
                results[k].append(predictor.run(inputs[k], features=(PENULTIMATE, conv), batch_size=2))
        except BaseException as e:  # surfaced below: a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(2):
        for out in results[k]:
            assert out.logits.shape[0] == len(inputs[k])
            for name in (PENULTIMATE, conv):
                torch.testing.assert_close(out.features[name], alone[k].features[name], rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(out.logits, alone[k].logits, rtol=1e-4, atol=1e-5)


def _image(predictor, seed: int) -> torch.Tensor:
    """One float 1 x C x H x W input in [0, 1], different per seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((1, predictor.in_channels, *predictor.input_size), generator=gen)


def test_gradients_are_those_of_the_target_logit_and_leave_no_hook(predictor):
    x, conv = _image(predictor, 0), _conv(predictor)
    g = predictor.gradients(x, target=2, layer=conv)
    xi = x.clone().requires_grad_(True)
    with torch.enable_grad():
        (want,) = torch.autograd.grad(predictor.model(xi)[0, 2], xi)  # the definition, without the Predictor
    torch.testing.assert_close(g.input_grad, want, rtol=1e-4, atol=1e-6)
    assert g.targets == [2] and g.logits.shape == (1, len(predictor.classes))
    assert g.layer_grad is not None and g.activations is not None and g.layer_grad.shape == g.activations.shape
    # the layer's output is the one run hands back as a feature; its gradient is not all zero
    torch.testing.assert_close(
        g.activations, predictor.run(x, features=(layer_feature(conv),)).features[layer_feature(conv)]
    )
    assert g.layer_grad.abs().sum() > 0
    # no target: each image's prediction
    assert predictor.gradients(x).targets == [int(predictor.logits(x).argmax())]
    assert all(not m._forward_hooks for m in predictor.model.modules())
    assert all(p.grad is None for p in predictor.model.parameters())
    with pytest.raises(ConfigError, match="no layer 'nope'"):
        predictor.gradients(x, layer="nope")
    with pytest.raises(ConfigError, match="class index 99 is out of range"):
        predictor.gradients(x, target=99)


def test_two_threads_explaining_with_one_predictor_each_get_their_own_map(predictor):
    from glyphcore.infer import saliency

    jobs = {
        0: (_image(predictor, 1), 0, "gradcam"),
        1: (_image(predictor, 2), 3, "gradcam"),
        2: (_image(predictor, 3), None, "smoothgrad"),
    }
    alone = {k: saliency(predictor, x, target=t, method=m, samples=4) for k, (x, t, m) in jobs.items()}
    assert np.abs(alone[0] - alone[1]).mean() > 0.01  # different images and classes: different maps
    start = threading.Barrier(len(jobs))
    results: dict[int, list] = {k: [] for k in jobs}
    errors: list[BaseException] = []

    def work(k: int) -> None:
        x, t, m = jobs[k]
        try:
            start.wait()
            for _ in range(6):
                results[k].append(saliency(predictor, x, target=t, method=m, samples=4))
        except BaseException as e:  # surfaced below: a thread's exception is otherwise lost
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in jobs:
        assert len(results[k]) == 6
        for s in results[k]:
            np.testing.assert_allclose(s, alone[k], atol=1e-5)
