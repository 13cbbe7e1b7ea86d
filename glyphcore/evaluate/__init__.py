"""Evaluation: how a trained model does on a split, and where it goes wrong.

- ``metrics``: confusion matrix, per-class metrics, most-confused pairs, top losses, merged
  accuracies, run A vs run B (plain numpy, any labels);
- ``result``: ``EvalResult``, a model's answers on one split with the figures derived from them;
- ``store``: ``evaluate_run`` (the model runs through ``Predictor.run``) and the run's ``eval/`` cache.

    result = evaluate_run("starter", split="test")
    print(result.accuracy_line)          # Accuracy of the network on the 15600 test images: 99.03%
    result.most_confused(min_count=2)    # [("l", "I", 31), ("I", "l", 12), ...]
    result.merged["case_insensitive"]    # accuracy when a letter and its other case count as one
"""

from __future__ import annotations

from glyphcore.evaluate.metrics import (
    MERGES,
    Comparison,
    TopLoss,
    accuracy_line,
    case_swap_share,
    compare_predictions,
    confusion_matrix,
    merged_accuracy,
    most_confused,
    normalize_confusion,
    per_class_metrics,
    top_losses,
)
from glyphcore.evaluate.result import EvalResult
from glyphcore.evaluate.store import (
    EVAL_FORMAT,
    PREDICTION_DTYPE,
    TRAINED_ON_FILE,
    eval_dir,
    evaluate_predictor,
    evaluate_run,
    load_eval,
    stored_splits,
)

__all__ = [
    "EVAL_FORMAT",
    "TRAINED_ON_FILE",
    "MERGES",
    "PREDICTION_DTYPE",
    "EvalResult",
    "TopLoss",
    "Comparison",
    "confusion_matrix",
    "normalize_confusion",
    "per_class_metrics",
    "most_confused",
    "top_losses",
    "merged_accuracy",
    "case_swap_share",
    "compare_predictions",
    "accuracy_line",
    "evaluate_predictor",
    "evaluate_run",
    "load_eval",
    "eval_dir",
    "stored_splits",
]
