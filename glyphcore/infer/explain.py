"""Why a model decided: saliency maps (Grad-CAM, SmoothGrad, input gradients) and feature maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from glyphcore.errors import ConfigError
from glyphcore.infer.forward import last_module_of_type, layer_feature
from glyphcore.infer.predictor import Predictor
from glyphcore.infer.preprocess import Prepared

__all__ = ["saliency", "feature_maps"]


def _normalise01(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32))
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _target_index(predictor: Predictor, logits: torch.Tensor, target: int | str | None) -> int:
    if target is None:
        return int(logits.argmax(dim=1)[0])
    if isinstance(target, str):
        if target not in predictor.classes:
            raise ConfigError(f"unknown class {target!r}: this model knows {''.join(predictor.classes)[:80]}")
        return predictor.classes.index(target)
    if not 0 <= int(target) < len(predictor.classes):
        raise ConfigError(f"class index {target} is out of range 0..{len(predictor.classes) - 1}")
    return int(target)


def saliency(
    predictor: Predictor,
    prepared: Prepared | torch.Tensor,
    target: int | str | None = None,
    method: str = "gradcam",
    samples: int = 16,
    noise: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """Where in the input the model looked for ``target`` (default: its prediction).

    Args:
        predictor: from :func:`load_predictor`.
        prepared: a :class:`Prepared` or a 1 x C x H x W tensor.
        target: class name or index to explain; None explains the predicted class.
        method: ``"gradcam"`` (Grad-CAM on the last conv layer, upsampled; falls back to
            ``"smoothgrad"`` for models without convolutions), ``"smoothgrad"`` (input gradients
            averaged over ``samples`` noisy copies, ``noise`` = std in input units) or
            ``"gradient"`` (plain input gradient magnitude).

    Returns:
        H x W float32 in [0, 1] over the model's input (H, W = ``predictor.input_size``).
    """
    if method not in ("gradcam", "smoothgrad", "gradient"):
        raise ConfigError(f"unknown saliency method {method!r}: use gradcam, smoothgrad or gradient")
    x = prepared.tensor if isinstance(prepared, Prepared) else prepared
    x = x[:1].to(predictor.device).float()
    with predictor.lock:
        return _saliency(predictor, x, target, method, samples, noise, seed)


def _saliency(
    predictor: Predictor, x: torch.Tensor, target: int | str | None, method: str, samples: int, noise: float, seed: int
) -> np.ndarray:
    import torch.nn.functional as F

    model = predictor.model
    conv = last_module_of_type(model, torch.nn.Conv2d) if method == "gradcam" else None
    if method == "gradcam" and conv is None:
        method = "smoothgrad"  # a model without convolutions (an MLP): no feature map to weigh
    with torch.enable_grad():
        if conv is not None:
            store: dict[str, torch.Tensor] = {}

            def hook(_m: torch.nn.Module, _i: Any, out: torch.Tensor) -> None:
                out.retain_grad()
                store["a"] = out

            h = conv.register_forward_hook(hook)
            try:
                logits = model(x.clone().requires_grad_(True))
            finally:
                h.remove()
            idx = _target_index(predictor, logits, target)
            logits[0, idx].backward()
            act, grad = store["a"], store["a"].grad
            assert grad is not None  # the hook kept the layer output's gradient
            weights = grad.mean(dim=(2, 3), keepdim=True)  # 1 x C x 1 x 1: channel importance
            cam = F.relu((weights * act).sum(dim=1, keepdim=True))  # 1 x 1 x h x w
            cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return _normalise01(cam[0, 0].detach().cpu().numpy())
        with torch.no_grad():
            idx = _target_index(predictor, model(x), target)
        gen = torch.Generator(device="cpu").manual_seed(seed)
        n = 1 if method == "gradient" else max(1, samples)
        total = torch.zeros_like(x)
        for _ in range(n):
            noisy = x if n == 1 else x + noise * torch.randn(x.shape, generator=gen).to(x.device)
            noisy = noisy.clone().requires_grad_(True)
            model(noisy)[0, idx].backward()
            assert noisy.grad is not None
            total += noisy.grad.abs()
        sal = (total / n)[0].amax(dim=0, keepdim=True)[None]  # 1 x 1 x H x W, strongest channel
        if method == "smoothgrad":  # a 5x5 box blur turns pixel speckle into regions a person can read
            sal = F.avg_pool2d(sal, 5, stride=1, padding=2, count_include_pad=False)
        return _normalise01(sal[0, 0].cpu().numpy())


def feature_maps(predictor: Predictor, prepared: Prepared | torch.Tensor) -> list[tuple[str, np.ndarray]]:
    """The output of every conv layer for one input, in forward order.

    Returns:
        [(layer name, C x h x w float32 array), ...]; empty for a model without convolutions.
    """
    x = prepared.tensor if isinstance(prepared, Prepared) else prepared
    convs = [n for n, m in predictor.model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    out = predictor.run(x[:1].float(), features=[layer_feature(n) for n in convs])
    return [(n, out.features[layer_feature(n)][0].numpy()) for n in convs if layer_feature(n) in out.features]
