"""Layout that reflows with the browser's width, for every page (app.py applies it once per run).

Streamlit's script cannot know how wide the browser is, so the pages lay side-by-side parts out in
wrapping rows (``st.container(horizontal=True)``) and this CSS gives the keyed parts a minimum
width: when a row has no room for them side by side, they go one under the other instead of being
squeezed (a drop-down cut to "gl", a parameter count to "70...", the canvas to 133 px). The keys
(``st-key-<key>`` classes) are the pages' own; a prefix rule covers a family of keys. In a row the
flex item is the ``stLayoutWrapper`` around a keyed container, so the rules select that wrapper
(``:has(> .st-key-...)``). Not a page.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["FIELD_MIN_REM", "ANSWER_MIN_PX", "NARROW_PX", "CSS", "apply"]

FIELD_MIN_REM = 10.5  # rem: a form field never narrower than this (an 8-letter choice and its arrow fit)
ANSWER_MIN_PX = 400  # px: a Draw answer panel; narrower and it goes below the canvas
NARROW_PX = 1100  # px of browser width below which the page's side margins shrink from 5 rem to 1.5 rem


def _item(selector: str) -> str:
    """The flex item (layout wrapper) around the containers matching ``selector``."""
    return f'[data-testid="stLayoutWrapper"]:has(> {selector})'


def _grow(selector: str, grow: int, basis: str) -> str:
    return (
        f"{_item(selector)} {{ flex: {grow} 1 {basis} !important; min-width: min(100%, {basis}) !important; }}"
        f"\n{selector} {{ min-width: 0 !important; }}"
    )


CSS = f"""<style>
/* a narrow window: smaller side margins, so the content keeps most of the width */
@media (max-width: {NARROW_PX}px) {{
  [data-testid="stMainBlockContainer"] {{ padding-left: 1.5rem !important; padding-right: 1.5rem !important; }}
}}
/* form rows (keys row_*): each field at least FIELD_MIN_REM wide, wrapping to the next line */
[class*="st-key-row_"] > div {{ flex: 1 1 {FIELD_MIN_REM}rem !important; min-width: {FIELD_MIN_REM}rem !important; }}
/* Train: the form and the model summary side by side on a wide screen, stacked on a narrow one */
{_grow(".st-key-tr_form", 4, "30rem")}
{_grow(".st-key-tr_side", 3, "22rem")}
/* Train: the live loss and accuracy charts side by side when each gets 22 rem, else stacked */
{_grow('[class*="st-key-tr_chart_"]', 1, "22rem")}
/* Draw: the canvas keeps its width; the answers take the rest, or the next line */
{_item(".st-key-draw_input")} {{ flex: 0 0 auto !important; }}
{_grow(".st-key-draw_answers", 1, f"{ANSWER_MIN_PX}px")}
{_grow('[class*="st-key-draw_run_"]', 1, f"{ANSWER_MIN_PX}px")}
/* Activations: the two overlays side by side when each gets 20 rem; formula cards two per row, or one */
{_grow('[class*="st-key-act_overlay_"]', 1, "20rem")}
{_grow('[class*="st-key-act_card_"]', 1, "22rem")}
{_item('[class*="st-key-act_card_"]')} {{ max-width: 100% !important; }}
/* Home: recipe cards at least 16 rem wide (three a row on a wide screen, two at 900 px), at most 26 */
{_grow('[class*="st-key-recipe_"]', 1, "16rem")}
{_item('[class*="st-key-recipe_"]')} {{ max-width: 26rem !important; }}
/* Evaluate: the per-class table and the most-confused pairs, each with room for all its columns */
{_grow(".st-key-eval_perclass", 3, "27rem")}
{_grow(".st-key-eval_confused", 2, "17rem")}
/* Evaluate: the per-family table, and the calibration figures and diagram with room for their labels */
{_grow(".st-key-eval_family", 3, "27rem")}
{_grow(".st-key-eval_calibration", 2, "20rem")}
/* Evaluate: a confusion matrix wider than the page scrolls sideways instead of being cut */
.st-key-eval_matrix {{ overflow-x: auto; }}
</style>"""


def apply() -> None:
    """Add the layout CSS to the page (an invisible element)."""
    st.html(CSS)
