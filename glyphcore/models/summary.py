"""A torchsummary-like model summary: one row per layer call, totals, and FLOPs per image.

How FLOPs are counted (forward hooks on the leaf modules, one image):

* a convolution costs ``out_h * out_w * out_channels * (in_channels / groups) * kh * kw``
  multiply-accumulates (MACs), a Linear ``out_positions * in_features * out_features`` and a GRU,
  per layer, direction and time step, ``3 * (input_size * hidden + hidden * hidden)`` MACs;
* one MAC is 2 FLOPs; BatchNorm, activations, pooling, biases and the GRU's gate arithmetic are
  not counted (they are a few percent for these models and memory-bound anyway);
* ``flops`` is the forward pass. ``train_flops`` adds the backward pass: the weight gradient costs
  as much as the forward for every layer with trainable weights, and the input gradient as much
  again for every layer whose input needs a gradient -- not the first layer, whose input is the
  image. For seed_cnn at 1x100x100 that is 30.82 MFLOP forward and
  3 x 30.82 - 2 x 3.69 (conv1's input gradient) = 85.07 MFLOP per training image: the figure
  that bench/train_cpu.py divides the machine's measured GFLOP/s by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

__all__ = ["SummaryRow", "Summary", "model_summary"]


@dataclass(frozen=True)
class SummaryRow:
    """One layer call.

    Attributes:
        name: the module's qualified name (``features.conv1``); a module called twice in one
            forward (torchvision's ResNet block reuses its ReLU) gets one row per call.
        type: the module's class name (``Conv2d``).
        output_shape: the output without the batch dimension, e.g. (16, 48, 48); for a GRU, the
            shape of its output sequence.
        params: parameters of the module (counted on its first call only).
        trainable: those that require a gradient.
        flops: forward FLOPs per image of this call (0 for uncounted layer types).
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    trainable: int
    flops: int


@dataclass
class Summary:
    """The summary of one model at one input shape (see ``model_summary``)."""

    input_shape: tuple[int, ...]
    rows: list[SummaryRow]
    total_params: int
    trainable_params: int
    flops: int  # forward FLOPs per image
    train_flops: int  # forward + backward FLOPs per training image
    model_name: str | None = None
    model_args: dict[str, Any] = field(default_factory=dict)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The model's output shape without the batch dimension (the last row's)."""
        return self.rows[-1].output_shape if self.rows else ()

    def to_records(self) -> list[dict[str, Any]]:
        """The rows as dicts (for a table in the app); output_shape as "16x48x48"."""
        return [{**asdict(r), "output_shape": _shape_text(r.output_shape)} for r in self.rows]

    def to_text(self) -> str:
        """A fixed-width table like torchsummary's, with totals and FLOPs."""
        head = ("Layer (type)", "Output shape", "Params", "MFLOPs")
        body = [
            (
                f"{r.name} ({r.type})",
                _shape_text(r.output_shape),
                f"{r.params:,}",
                f"{r.flops / 1e6:.2f}" if r.flops else "",
            )
            for r in self.rows
        ]
        widths = [max(len(head[i]), *(len(b[i]) for b in body)) if body else len(head[i]) for i in range(4)]

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                [
                    cells[0].ljust(widths[0]),
                    cells[1].ljust(widths[1]),
                    cells[2].rjust(widths[2]),
                    cells[3].rjust(widths[3]),
                ]
            ).rstrip()

        rule = "-" * len(line(head))
        title = f"{self.model_name or 'model'}  input {_shape_text(self.input_shape)}"
        if self.model_args:
            extra = {k: v for k, v in self.model_args.items() if k not in ("in_channels", "input_size")}
            title += "  " + " ".join(f"{k}={v}" for k, v in extra.items())
        out = [title, rule, line(head), rule.replace("-", "=")]
        out += [line(b) for b in body]
        out += [
            rule.replace("-", "="),
            f"Total params: {self.total_params:,}",
            f"Trainable params: {self.trainable_params:,}",
            f"Non-trainable params: {self.total_params - self.trainable_params:,}",
            f"Params size: {self.total_params * 4 / 2**20:.2f} MiB (float32)",
            f"Forward FLOPs per image: {self.flops / 1e6:.2f} M (conv/linear/GRU multiply-adds x 2)",
            f"Training FLOPs per image: {self.train_flops / 1e6:.2f} M (forward + backward)",
            rule,
        ]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.to_text()


def _shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(int(s)) for s in shape)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return None


def _macs(module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call, for the whole batch (see the module docstring)."""
    if isinstance(module, nn.Conv1d | nn.Conv2d | nn.Conv3d):
        kernel = 1
        for k in module.kernel_size:
            kernel *= int(k)
        return out.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    if isinstance(module, nn.GRU) and inp is not None:
        batched = inp.dim() == 3
        steps = inp.shape[1 if module.batch_first else 0] if batched else inp.shape[0]
        batch = inp.shape[0 if module.batch_first else 1] if batched else 1
        dirs = 2 if module.bidirectional else 1
        h = module.hidden_size
        total = 0
        for layer in range(module.num_layers):
            fin = module.input_size if layer == 0 else h * dirs
            total += dirs * 3 * (fin * h + h * h)
        return total * steps * batch
    return 0


class _LayerRecorder:
    """Forward hooks that record one ``SummaryRow`` per leaf-module call and add up the FLOPs."""

    def __init__(self) -> None:
        self.rows: list[SummaryRow] = []
        self.seen: set[int] = set()  # modules already counted: a second call adds no parameters
        self.flops = 0  # forward FLOPs per image
        self.train_flops = 0  # forward + backward FLOPs per image

    def hook(self, name: str) -> Any:
        """The forward hook of the module called ``name``."""

        def record(module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
            o = _first_tensor(out)
            i = _first_tensor(args)
            if o is None:
                return
            macs = _macs(module, i, o)
            if id(module) in self.seen:
                params = trainable = 0
            else:
                self.seen.add(id(module))
                params = sum(p.numel() for p in module.parameters())
                trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            weight_grad = any(p.requires_grad for p in module.parameters())
            input_grad = i is not None and i.requires_grad
            self.flops += 2 * macs
            self.train_flops += 2 * macs * (1 + int(weight_grad) + int(input_grad))
            self.rows.append(SummaryRow(name, type(module).__name__, tuple(o.shape[1:]), params, trainable, 2 * macs))

        return record


def model_summary(model: nn.Module, input_shape: Sequence[int]) -> Summary:
    """Run one image through ``model`` and describe every layer call.

    The model runs in eval mode (BatchNorm uses its running statistics and is not updated) and
    is put back in the mode it was in; its weights are not touched.

    Args:
        model: any ``nn.Module`` taking N x C x H x W input; ``glyph_name``/``glyph_args`` are
            shown when present (models from ``create_model``).
        input_shape: (C, H, W) of one image, e.g. (1, 100, 100).

    Returns:
        The Summary: rows, total and trainable parameters, forward and training FLOPs per image.
    """
    input_shape = tuple(int(s) for s in input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    x = torch.zeros((1, *input_shape), device=device)

    recorder = _LayerRecorder()
    handles = [
        m.register_forward_hook(recorder.hook(n))
        for n, m in model.named_modules()
        if n and not any(True for _ in m.children())
    ]
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    return Summary(
        input_shape=input_shape,
        rows=recorder.rows,
        total_params=sum(p.numel() for p in model.parameters()),
        trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        flops=recorder.flops,
        train_flops=recorder.train_flops,
        model_name=getattr(model, "glyph_name", None),
        model_args=dict(getattr(model, "glyph_args", {}) or {}),
    )
