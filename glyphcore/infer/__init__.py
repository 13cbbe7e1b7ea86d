"""Inference: user images into the glyph frame, checkpoints into warm predictors, and why a model decided.

- ``image_input``: any path, bytes, file object, PIL image or array -> a uint8 array, safely;
- ``preprocess``: the ONE uint8 -> model-input function (``preprocess`` for user drawings and
  images, ``frame_to_tensor`` for glyph arrays);
- ``forward``: one batched forward pass with the inner features a caller names, and one gradient
  pass with a named layer's activations and gradients (the mechanisms);
- ``letters``: the "is this a letter" judgement read from a checkpoint's calibration;
- ``predictor``: a model rebuilt from its checkpoint alone (``load_predictor``); ``Predictor.run``
  and ``Predictor.gradients`` are the one place that runs a model over images;
- ``calibration``: fitting the temperature and the letter thresholds, ECE;
- ``explain``: saliency maps and feature maps;
- ``neighbours``: the training glyphs nearest to a drawing; ``embedding``: a split's features for a map;
- ``activation_stats``: what each activation layer of a trained model produces on its data.

Modules import downward in that order (``image_input`` and ``preprocess`` below them all).

One preprocessing function serves the Draw page, the upload box and the CLI::

    prepared = preprocess(canvas_rgba)            # or a PIL image, a file path, bytes
    if prepared.empty: ...                        # nothing drawn: say so, predict nothing
    predictor = load_predictor("starter")         # a run id, a run folder, "starter" or a .pt file
    [pred] = predictor.predict(prepared, topk=5)  # pred.label, pred.topk = [("A", 0.97), ...]
"""

from __future__ import annotations

from glyphcore.infer.explain import feature_maps, saliency
from glyphcore.infer.forward import Gradients, Outputs, last_module_of_type
from glyphcore.infer.image_input import MAX_INPUT_PIXELS
from glyphcore.infer.predictor import Prediction, Predictor, checkpoint_path, load_predictor
from glyphcore.infer.preprocess import MIN_INK_FRACTION, Prepared, frame_to_tensor, preprocess

__all__ = [
    "MAX_INPUT_PIXELS",
    "MIN_INK_FRACTION",
    "Prepared",
    "Outputs",
    "Gradients",
    "Prediction",
    "Predictor",
    "preprocess",
    "frame_to_tensor",
    "load_predictor",
    "checkpoint_path",
    "saliency",
    "feature_maps",
    "last_module_of_type",
]
