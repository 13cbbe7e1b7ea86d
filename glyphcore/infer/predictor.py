"""Checkpoints into warm predictors: a model rebuilt from its file alone, ready for many predictions.

predictor = load_predictor("starter")         # a run id, a run folder, "starter" or a .pt file
[pred] = predictor.predict(prepared, topk=5)  # pred.label, pred.topk = [("A", 0.97), ...]
out = predictor.run(glyphs, features=("penultimate",), batch_size=256)  # out.logits, out.features

``Predictor.run`` and ``Predictor.gradients`` are the one place that runs a model over images:
evaluation, calibration, nearest glyphs, the embedding map, kept drawings and activation statistics
call ``run``; saliency maps call ``gradients``. Both hold the predictor's lock while their hooks are on
the model, so callers sharing one cached predictor never see each other's features or gradients.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glyphcore.checkpoint import load_checkpoint
from glyphcore.devices import resolve_device
from glyphcore.errors import CheckpointError, ConfigError, ImageInputError
from glyphcore.frame import FRAME_SIZE
from glyphcore.infer.forward import Gradients, Outputs, gradients_of, run_batches
from glyphcore.infer.letters import calibration_of, judge_letters, judged_features
from glyphcore.infer.preprocess import Prepared, frame_to_tensor, preprocess
from glyphcore.runfolder.store import checkpoint_path

__all__ = ["Gradients", "Outputs", "Prediction", "Predictor", "load_predictor", "checkpoint_path"]

RUN_BATCH = 256  # images per forward pass of Predictor.run unless the caller says


@dataclass
class Prediction:
    """One image's answer.

    Attributes:
        label: the most probable class name.
        topk: [(class name, probability), ...], most probable first.
        probs: probabilities of every class (len(classes),), summing to 1; calibrated (the
            checkpoint's temperature applied) when the checkpoint has a calibration.
        letter: True when the input is judged to look like a letter, False when not (see ``reason``),
            None when the checkpoint has no fitted judgement (``glyphcore calibrate RUN`` fits one).
        reason: why the input is not judged a letter ("unsure: ..." or "not a letter: ..."), or "".
    """

    label: str
    topk: list[tuple[str, float]]
    probs: np.ndarray = field(repr=False)
    letter: bool | None = None
    reason: str = ""


class Predictor:
    """A model rebuilt from a checkpoint alone, in eval mode, ready for many predictions.

    Attributes:
        model: the ``nn.Module`` (eval mode, on ``device``).
        classes: class names, label i <-> classes[i].
        input_size: (H, W) the model takes.
        in_channels: channels the model takes.
        checkpoint: the checkpoint's metadata (everything but the weights and optimizer state).
        path: the checkpoint file.
        device: where the model lives.
    """

    def __init__(self, model: torch.nn.Module, ckpt: dict[str, Any], path: Path, device: torch.device) -> None:
        self.model = model
        self.classes: list[str] = list(ckpt["classes"])
        args = ckpt["model_args"]
        isz = args.get("input_size", FRAME_SIZE)
        self.input_size: tuple[int, int] = (int(isz), int(isz)) if isinstance(isz, int) else (int(isz[0]), int(isz[1]))
        self.in_channels = int(args.get("in_channels", 1))
        self.checkpoint = {k: v for k, v in ckpt.items() if k not in ("state_dict", "optimizer", "scheduler", "rng")}
        self.path = path
        self.device = device
        self.calibration = calibration_of(ckpt)
        # softmax(logits / T): the probability every page and command shows (1.0: not calibrated)
        self.temperature = float(self.calibration["temperature"]) if self.calibration else 1.0
        # One model serves every app session (st.cache_resource): run and gradients hook into it, so
        # model calls take turns rather than see each other's hooks.
        self.lock = threading.RLock()

    @property
    def name(self) -> str:
        """A short label for the app: ``<run folder>/<file>``."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def data_source(self) -> str:
        """The data source the model was trained on (its config's ``data``, e.g. ``glyphs-52``): the
        one answer to "which data was this run trained on" for evaluation, nearest glyphs and
        activation statistics."""
        cfg = self.checkpoint.get("config") or {}
        ds = self.checkpoint.get("dataset") or {}
        cfg, ds = (cfg if isinstance(cfg, dict) else {}), (ds if isinstance(ds, dict) else {})
        return str(cfg.get("data") or ds.get("source") or "glyphs-52")

    def prepare(self, image: Any) -> Prepared:
        """``preprocess`` for this model's input size and channels."""
        return preprocess(image, self.input_size, self.in_channels)

    def _batch(self, x: Any) -> torch.Tensor:
        if isinstance(x, Prepared):
            t = x.tensor
        elif isinstance(x, (list, tuple)) and x and all(isinstance(p, Prepared) for p in x):
            t = torch.cat([p.tensor for p in x])
        elif isinstance(x, torch.Tensor):
            if not 2 <= x.ndim <= 4:
                raise ImageInputError(f"predict takes an N x C x H x W tensor, got shape {tuple(x.shape)}")
            t = x.reshape((1,) * (4 - x.ndim) + tuple(x.shape))  # H x W or C x H x W -> a batch of one
            if t.dtype == torch.uint8:
                t = t.float().div_(255.0)
        else:
            raise ImageInputError(
                f"predict takes a Prepared (from preprocess), a list of them, or an N x C x H x W tensor; "
                f"got {type(x).__name__}"
            )
        if tuple(t.shape[1:]) != (self.in_channels, *self.input_size):
            raise ImageInputError(
                f"this model takes {self.in_channels} x {self.input_size[0]} x {self.input_size[1]} inputs, got "
                f"{tuple(t.shape[1:])}: prepare images with predictor.prepare(image)"
            )
        return t

    def _chunks(self, images: Any, batch_size: int) -> Iterator[torch.Tensor]:
        """Model-input batches on the device: glyph arrays (uint8 N x C x H x W or N x H x W, any frame
        size) go through ``frame_to_tensor``; anything :meth:`predict` takes is used as it is."""
        if isinstance(images, np.ndarray) or (isinstance(images, torch.Tensor) and images.dtype == torch.uint8):
            raw = images if isinstance(images, torch.Tensor) or images.ndim > 2 else images[None]
            if raw.ndim in (3, 4) and (isinstance(raw, np.ndarray) or raw.ndim == 4):
                for s in range(0, int(raw.shape[0]), batch_size):
                    yield self._glyph_batch(raw[s : s + batch_size])
                return
        t = self._batch(images)
        for s in range(0, int(t.shape[0]), batch_size):
            yield t[s : s + batch_size].to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def _glyph_batch(self, chunk: Any) -> torch.Tensor:
        """uint8 glyphs -> this model's input on its device (a GPU-resident data set stays there)."""
        if isinstance(chunk, torch.Tensor) and tuple(chunk.shape[-2:]) == self.input_size:
            x = chunk.to(self.device).float().div_(255.0)
        else:
            chunk = chunk.cpu().numpy() if isinstance(chunk, torch.Tensor) else np.asarray(chunk)
            x = frame_to_tensor(chunk, self.input_size, self.in_channels)
        return x.to(self.device, non_blocking=True).contiguous(memory_format=torch.channels_last)

    def run(
        self,
        images: Any,
        features: Iterable[str] = (),
        batch_size: int = RUN_BATCH,
        on_batch: Callable[[Outputs], None] | None = None,
    ) -> Outputs:
        """Run the model over images in batches: the one place that does (see the module docstring).

        Args:
            images: glyph arrays (uint8 N x C x H x W numpy array, memmap or tensor, in any frame size),
                or what :meth:`predict` takes.
            features: inner features to keep: ``"penultimate"`` (the input of the last ``nn.Linear``)
                and ``"layer:<module name>"`` (that module's output); see ``glyphcore.infer.forward``.
            batch_size: images per forward pass.
            on_batch: when given, called with each batch's outputs, and the features are not kept.

        Returns:
            ``Outputs(logits, features)``: N x K float32 logits and N x ... features, on the CPU.

        Raises:
            ConfigError: an unknown feature or layer name.
            ImageInputError: images of the wrong shape.
        """
        if int(batch_size) < 1:
            raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
        # The lock spans the whole run: hooks live on the shared model only while it holds it.
        with self.lock, torch.inference_mode():
            return run_batches(self.model, self._chunks(images, int(batch_size)), features, on_batch)

    def gradients(self, x: Any, target: int | None = None, layer: str | None = None) -> Gradients:
        """The gradients of each image's ``target`` logit: the pass saliency maps rest on.

        Args:
            x: what :meth:`predict` takes (a :class:`Prepared`, a list of them, or a tensor).
            target: class index to differentiate for every image; None = each image's prediction.
            layer: qualified name of a sub-module (``"features.conv3"``) whose output and its
                gradient to return as well (Grad-CAM's last conv layer).

        Returns:
            ``Gradients(logits, targets, input_grad, activations, layer_grad)``, on the model's device.

        Raises:
            ConfigError: a class index out of range or an unknown layer name.
            ImageInputError: images of the wrong shape.
        """
        if target is not None and not 0 <= int(target) < len(self.classes):
            raise ConfigError(f"class index {target} is out of range 0..{len(self.classes) - 1}")
        t = self._batch(x).to(self.device).float()
        with self.lock:  # the hook and the backward pass see only this call's tensors
            return gradients_of(self.model, t, None if target is None else int(target), layer)

    def logits(self, x: Any) -> torch.Tensor:
        """N x num_classes float32 logits for a batch (see :meth:`predict` for what ``x`` may be)."""
        return self.run(x).logits

    def probabilities(self, x: Any) -> torch.Tensor:
        """N x num_classes calibrated probabilities, ``softmax(logits / temperature)``."""
        return (self.logits(x) / self.temperature).softmax(dim=1)

    def predict(self, x: Any, topk: int = 5) -> list[Prediction]:
        """Top-k class probabilities for each image of a batch.

        Args:
            x: a :class:`Prepared`, a list of them, or an N x C x H x W float tensor in [0, 1]
                (uint8 is scaled by 1/255).
            topk: how many classes to return per image (capped at the class count).

        Returns:
            One :class:`Prediction` per image: calibrated probabilities, and whether it looks like a
            letter at all when the checkpoint holds a fitted judgement.

        Raises:
            ImageInputError: an empty drawing (check ``prepared.empty`` first) or a wrong shape.
        """
        items = [x] if isinstance(x, Prepared) else x
        if isinstance(items, (list, tuple)):
            for p in items:
                if isinstance(p, Prepared) and p.empty:
                    raise ImageInputError(p.note or "the drawing is empty: draw a letter first")
        wanted = judged_features(self.model) if self.calibration else ()
        out = self.run(self._batch(x), features=wanted)
        probs = (out.logits / self.temperature).softmax(dim=1)
        judged = judge_letters(out.logits, out.features, self.calibration, self.classes)
        k = max(1, min(int(topk), probs.shape[1]))
        top_p, top_i = probs.topk(k, dim=1)
        probs_np, p_lists, i_lists = probs.numpy(), top_p.tolist(), top_i.tolist()
        return [
            Prediction(
                label=self.classes[ii[0]],
                topk=[(self.classes[i], float(p)) for i, p in zip(ii, pp)],
                probs=probs_np[n],
                letter=None if judged is None else bool(judged.letter[n]),
                reason="" if judged is None else judged.reasons[n],
            )
            for n, (pp, ii) in enumerate(zip(p_lists, i_lists))
        ]


def inference_device(device: str | torch.device | None) -> torch.device:
    """The device to predict on (default the CPU); ConfigError for an unknown one or one this machine lacks."""
    return resolve_device(device, default="cpu")


def load_predictor(
    run_ref: str | os.PathLike, which: str = "best", device: str | torch.device | None = None
) -> Predictor:
    """Rebuild a model from its checkpoint alone and return it warm, in eval mode.

    Args:
        run_ref: a run id, a run folder, ``"starter"``, or the path of a ``.pt`` checkpoint.
        which: ``"best"`` (lowest validation loss) or ``"last"`` (the latest epoch).
        device: where to run; default the CPU (one drawing at a time is fastest there).

    Returns:
        A :class:`Predictor`; the app keeps it with ``st.cache_resource``.

    Raises:
        RunError: no such run.
        CheckpointError: no checkpoint yet, not a glyphcore checkpoint, an unknown model, a class
            list that does not fit the model, or weights that do not fit the architecture.
    """
    from glyphcore.models import rebuild_model

    path = checkpoint_path(run_ref, which)
    ckpt = load_checkpoint(path)
    name, args, classes = ckpt["model_name"], ckpt["model_args"], ckpt["classes"]
    if (
        not isinstance(args, dict)
        or not isinstance(classes, (list, tuple))
        or not classes
        or not all(isinstance(c, str) for c in classes)
    ):
        raise CheckpointError(f"{path} has malformed model_args or classes: re-save it with glyphcore")
    n_out = args.get("num_classes", len(classes))
    if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out != len(classes):
        raise CheckpointError(
            f"{path} is inconsistent: the model has {n_out!r} outputs but the checkpoint lists "
            f"{len(classes)} classes; it cannot name its predictions"
        )
    try:
        # Never create_model(**args): arguments read from a file must not fetch pretrained weights.
        model = rebuild_model(name, args, ckpt["state_dict"], source=str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()
        raise CheckpointError(
            f"{path}: its weights do not fit a {name} model with {args}: {' '.join(first[:3])[:400]}"
        ) from None
    dev = inference_device(device)
    # channels_last: oneDNN's and cuDNN's fast convolution layout (about 2x on the CPU for seed_cnn);
    # training uses it too. Inputs are converted in Predictor.logits.
    model.to(dev, memory_format=torch.channels_last).eval()
    for p in model.parameters():
        p.requires_grad_(False)  # inference only; saliency asks for input gradients itself
    return Predictor(model, ckpt, path, dev)
