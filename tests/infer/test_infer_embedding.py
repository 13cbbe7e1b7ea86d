"""glyphcore.infer.embedding: penultimate features of a class-balanced sample, for the embedding map."""

from __future__ import annotations

import numpy as np
import pytest
from tiny_runs import tiny_run

from glyphcore.data import load_dataset
from glyphcore.infer import frame_to_tensor, load_predictor
from glyphcore.infer.embedding import split_features
from glyphcore.infer.neighbours import penultimate_features


def test_split_features_are_the_models_own(tiny_glyphs, tmp_path):
    pred = load_predictor(tiny_run(tmp_path, "tiny-relu"))
    sf = split_features(pred, "valid", per_class=2)
    data = load_dataset("glyphs-52", "valid")
    k = len(data.classes)
    assert len(sf.indices) == sf.features.shape[0] == len(sf.preds) == len(sf.labels)
    assert np.bincount(sf.labels, minlength=k).max() <= 2
    assert (sf.labels == np.asarray(data.labels)[sf.indices]).all()
    x = frame_to_tensor(np.asarray(data.images[sf.indices[:5]]))
    assert sf.features[:5] == pytest.approx(penultimate_features(pred, x).features["penultimate"].numpy(), abs=1e-4)
    assert (sf.preds[:5] == pred.logits(x).argmax(1).numpy()).all()
