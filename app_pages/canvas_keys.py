"""An Undo button and Ctrl+Z / Ctrl+Shift+Z (Cmd on a Mac) for the Draw page's canvas.

streamlit-drawable-canvas keeps an undo history and has Undo / Redo buttons in a toolbar that only
shows while the pointer is over the canvas, and no keyboard shortcuts. This small component (a
Streamlit v2 component: its JavaScript runs in the page, not an iframe) shows a visible Undo
button and listens for the shortcuts on the page; both press the canvas's own toolbar buttons, so
the canvas sends its updated drawing to the app as it does for a click on them. Not a page.
"""

from __future__ import annotations

import streamlit as st

__all__ = ["undo_controls"]

_HTML = (
    '<button type="button" class="gx-undo" title="Undo the last stroke (Ctrl+Z; Ctrl+Shift+Z redoes)">'
    "&#x21B6; Undo</button>"
)
_CSS = """
.gx-undo {
  font: inherit; font-size: 0.95rem; padding: 0.25rem 0.75rem; min-height: 2.5rem; cursor: pointer;
  color: var(--st-text-color); background: var(--st-background-color);
  border: 1px solid color-mix(in srgb, var(--st-text-color) 20%, transparent); border-radius: 0.5rem;
}
.gx-undo:hover { border-color: var(--st-primary-color); color: var(--st-primary-color); }
"""
_JS = """
export default function(component) {
  const { parentElement } = component;
  // the canvas's toolbar buttons live in the canvas component's (open) shadow root
  const press = (label) => {
    for (const host of document.querySelectorAll('*')) {
      const root = host.shadowRoot;
      const button = root && root.querySelector('.dc-root button[aria-label="' + label + '"]');
      if (button) { if (!button.disabled) button.click(); return true; }
    }
    return false;
  };
  const undo = parentElement.querySelector('.gx-undo');
  if (undo) undo.onclick = () => press('Undo');
  const onKey = (e) => {
    if (!(e.ctrlKey || e.metaKey) || e.altKey) return;
    const target = e.composedPath()[0];
    if (target && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName))) return;
    const key = e.key.toLowerCase();
    const done = key === 'z' && !e.shiftKey ? press('Undo') : (key === 'z' || key === 'y') ? press('Redo') : false;
    if (done) e.preventDefault();
  };
  document.addEventListener('keydown', onKey);
  return () => document.removeEventListener('keydown', onKey);
}
"""

_component = st.components.v2.component("glyph_canvas_undo", html=_HTML, css=_CSS, js=_JS)


def undo_controls(key: str = "canvas_undo") -> None:
    """Show the Undo button and listen for Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y on the page."""
    _component(key=key)
