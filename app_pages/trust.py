"""Page sections that say how far an answer can be trusted (not a page: the Draw and Evaluate pages call these).

- ``verdict``: the Draw page's answer when the model judges the input not to be a letter (or is unsure);
- ``placement_note``: the Draw page's note when the ink is far off the guide lines, with a centred reading;
- ``calibration_section``: Evaluate's reliability diagram and ECE before/after calibration;
- ``family_section``: Evaluate's accuracy per design family of the data set.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd
import streamlit as st

from glyphcore import viz
from glyphcore.infer.calibration import reliability_bins
from glyphcore.infer.judgement import calibration_sentence
from glyphcore.infer.preprocess import Prepared, recentre

__all__ = ["code_span", "verdict", "placement_note", "calibration_section", "family_section"]


def code_span(text: str) -> str:
    """``text`` as a markdown code span: its content is shown as written, never read as markup or
    HTML, whatever it holds (the fence is one backtick longer than any run of backticks in it)."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def verdict(answer: Any) -> bool:
    """Show the "unsure / not a letter" state in place of a confident answer.

    Returns:
        True when it was shown (the caller then shows no big letter), False for a letter.
    """
    if answer.letter is not False:
        return False
    unsure = answer.reason.startswith("unsure")
    title = "Unsure" if unsure else "Not a letter"
    st.markdown(
        # the label comes from the checkpoint: escaped, it is text in the attribute, never markup
        f"<div data-testid='draw-verdict' data-guess='{html.escape(answer.label, quote=True)}' "
        f"style='font-size:40px;line-height:1.2;font-weight:700'>{title}</div>",
        unsafe_allow_html=True,
    )
    st.caption(f"{answer.reason}.")  # every reason names the best guess; its share is in the top 5 below
    return True


def placement_note(predictor: Any, prepared: Prepared) -> None:
    """When the ink sits far off the guide lines: say so, and show what the model reads once the
    drawing is re-placed on them (its height scaled to the cap height, its bottom on the baseline)."""
    place = prepared.placement
    if place is None or not place.off:
        return
    centred = recentre(prepared)
    [again] = predictor.predict(centred, topk=3)
    st.warning(f"Off the guide lines: {place.message}.", icon=":material/straighten:")
    st.markdown(
        f"<span data-testid='draw-centred'>Centred reading: **{code_span(again.label)}** "
        f"({again.topk[0][1]:.1%})</span>",
        unsafe_allow_html=True,
    )
    st.image(centred.preview, caption="the drawing re-placed on the guide lines", width=100, output_format="PNG")


def calibration_section(result: Any, calibrated: bool | None = None) -> None:
    """Reliability diagram and ECE (15 bins) of the probabilities shown, before and after calibration.

    ``calibrated``: whether the checkpoint holds a calibration (None: judged by a temperature other
    than 1; a calibration may keep T = 1 when every other temperature made a font family worse)."""
    is_calibrated = result.temperature != 1.0 if calibrated is None else calibrated
    st.subheader("Calibration")
    raw = result.ece_uncalibrated
    figures = st.container(horizontal=True, gap="medium")  # wraps in a narrow column instead of cutting
    figures.metric(
        "ECE shown",
        f"{result.ece:.2%}",
        help="expected calibration error over 15 confidence bins of the probabilities this app shows",
        width="content",
    )
    figures.metric(
        "ECE uncalibrated",
        f"{raw:.2%}" if raw is not None else "n/a",
        help="the same at temperature 1 (the raw softmax)",
        width="content",
    )
    figures.metric(
        "temperature",
        f"{result.temperature:.3f}",
        help="probabilities are softmax(logits / T); 1.000: the checkpoint is not calibrated",
        width="content",
    )
    curves = {"shown (calibrated)": reliability_bins(result.p_pred, result.labels == result.preds)}
    if result.p_pred_raw is not None and result.temperature != 1.0:
        curves["uncalibrated (T = 1)"] = reliability_bins(result.p_pred_raw, result.labels == result.preds)
    st.altair_chart(viz.reliability_chart(curves, height=280), width="stretch")
    note = "" if is_calibrated else " This checkpoint is not calibrated: `glyphcore calibrate RUN` fits it."
    st.caption(
        "Each point: the images whose top probability falls in one of 15 bins, at their mean confidence "
        "and their accuracy; on the dashed diagonal the probability shown is what it means." + note
    )
    if is_calibrated:
        st.text(calibration_sentence(result.split, raw, result.ece))  # the split name comes from a folder: plain text


def family_section(result: Any) -> None:
    """Accuracy per design family of the data set (its generalisation axis), worst first."""
    rows = result.per_family
    st.subheader("Per design family")
    if not rows:
        st.caption("This data set records no fonts per image, so there is no per-family view.")
        return
    df = pd.DataFrame(rows)[
        ["family", "style", "fonts", "n", "errors", "accuracy", "accuracy_il_size_merged", "top_confusion"]
    ]
    st.dataframe(
        df,
        hide_index=True,
        width="stretch",
        key="family_table",
        column_config={
            "accuracy": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0, format="percent"),
            "accuracy_il_size_merged": st.column_config.NumberColumn("I/l + size-only merged", format="percent"),
            "top_confusion": st.column_config.TextColumn("most frequent error"),
        },
    )
    st.caption(
        f"{len(rows)} design families in this split; families never share a split, so these are fonts "
        f"the model did not train on (except on train and seen)."
    )
