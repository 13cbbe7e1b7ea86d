"""Why a model decided: saliency maps (Grad-CAM, SmoothGrad, input gradients) and feature maps."""

from __future__ import annotations

import numpy as np
import torch

from glyphcore.errors import ConfigError
from glyphcore.infer.forward import layer_feature
from glyphcore.infer.predictor import Predictor
from glyphcore.infer.preprocess import Prepared

__all__ = ["saliency", "feature_maps"]


def _normalise01(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float32))
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def _target_index(predictor: Predictor, target: int | str | None) -> int | None:
    """The class index of ``target`` (a name or an index); None stays None (the prediction)."""
    if target is None:
        return None
    if isinstance(target, str):
        if target not in predictor.classes:
            raise ConfigError(f"unknown class {target!r}: this model knows {''.join(predictor.classes)[:80]}")
        return predictor.classes.index(target)
    return int(target)  # Predictor.gradients checks its range


def _last_conv_name(model: torch.nn.Module) -> str | None:
    """The qualified name of the model's last ``nn.Conv2d`` (forward order for the zoo); None without one."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d)]
    return names[-1] if names else None


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
    idx = _target_index(predictor, target)
    conv = _last_conv_name(predictor.model) if method == "gradcam" else None
    if conv is not None:
        return _grad_cam(predictor, x, idx, conv)
    if method == "gradcam":
        method = "smoothgrad"  # a model without convolutions (an MLP): no feature map to weigh
    return _input_saliency(predictor, x, idx, method, samples, noise, seed)


def _grad_cam(predictor: Predictor, x: torch.Tensor, idx: int | None, conv: str) -> np.ndarray:
    """Grad-CAM: the layer's channels weighted by their mean gradient, rectified, upsampled to the input."""
    import torch.nn.functional as F

    g = predictor.gradients(x, idx, layer=conv)
    assert g.activations is not None and g.layer_grad is not None  # a layer was named
    weights = g.layer_grad.mean(dim=(2, 3), keepdim=True)  # 1 x C x 1 x 1: channel importance
    cam = F.relu((weights * g.activations).sum(dim=1, keepdim=True))  # 1 x 1 x h x w
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _normalise01(cam[0, 0].cpu().numpy())


def _input_saliency(
    predictor: Predictor, x: torch.Tensor, idx: int | None, method: str, samples: int, noise: float, seed: int
) -> np.ndarray:
    """Input-gradient magnitude, averaged over noisy copies for SmoothGrad and then box-blurred."""
    import torch.nn.functional as F

    n = 1 if method == "gradient" else max(1, samples)
    if idx is None and n > 1:  # every noisy copy explains the clean input's prediction
        idx = int(predictor.logits(x).argmax(dim=1)[0])
    gen = torch.Generator(device="cpu").manual_seed(seed)
    total = torch.zeros_like(x)
    for _ in range(n):
        noisy = x if n == 1 else x + noise * torch.randn(x.shape, generator=gen).to(x.device)
        total += predictor.gradients(noisy, idx).input_grad.abs()
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
