"""Chart and image builders for the app: pure functions, data in, chart (or image array) out.

Nothing here imports streamlit or touches files; the pages pass plain values (numpy arrays, lists
of metric events, run tables) and show what comes back with ``st.altair_chart`` / ``st.image``.

- ``images``: sample grids, per-class means, saliency overlays, feature-map grids, guide lines;
- ``curves``: class distribution per split; metric events -> tidy frames -> live and overlaid curves, seed-group bands;
- ``diagnostics``: confusion matrix, top-k bars, activation curves and layer histograms;
- ``compare``: seed groups' differences against a baseline and accuracy against cost;
- ``hparams``: parallel coordinates of runs' settings and results; ``embedding``: PCA maps of features;
- ``palette``: the charts' colours and the WCAG contrast they are checked with.
"""

from __future__ import annotations

from glyphcore.viz.calibration import reliability_chart, reliability_frame
from glyphcore.viz.curves import (
    BAND_COLUMNS,
    SERIES_DASH,
    TRAIN,
    TRAIN_STEPS,
    VAL,
    X_AXES,
    class_distribution_chart,
    curves_frame,
    group_band_chart,
    live_curves_chart,
    metrics_frames,
    overlay_curves_chart,
    smooth_curves,
    smooth_ema,
)
from glyphcore.viz.diagnostics import (
    AXIS_LABEL_PX,
    CONFUSION_SELECTION,
    LETTER_FONT,
    activation_curve_chart,
    activation_overlay_chart,
    confusion_matrix_chart,
    layer_histogram_chart,
    letter_name,
    topk_chart,
)
from glyphcore.viz.images import class_means, feature_map_grid, guide_lines_image, image_grid, saliency_overlay

__all__ = [
    "image_grid",
    "class_means",
    "saliency_overlay",
    "feature_map_grid",
    "guide_lines_image",
    "TRAIN_STEPS",
    "TRAIN",
    "VAL",
    "class_distribution_chart",
    "metrics_frames",
    "live_curves_chart",
    "curves_frame",
    "overlay_curves_chart",
    "BAND_COLUMNS",
    "group_band_chart",
    "SERIES_DASH",
    "X_AXES",
    "smooth_ema",
    "smooth_curves",
    "CONFUSION_SELECTION",
    "LETTER_FONT",
    "AXIS_LABEL_PX",
    "letter_name",
    "confusion_matrix_chart",
    "topk_chart",
    "activation_curve_chart",
    "activation_overlay_chart",
    "layer_histogram_chart",
    "reliability_chart",
    "reliability_frame",
]
