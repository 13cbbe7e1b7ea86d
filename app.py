"""Glyph Explorer, the app shell: ``streamlit run app.py`` (settings in .streamlit/config.toml).

One ``st.set_page_config`` and ``st.navigation`` over the pages of ``app_pages.PAGES``; nothing
heavy runs here.
"""

from __future__ import annotations

import streamlit as st

from app_pages import PAGES, layout

st.set_page_config(page_title="Glyph Explorer", page_icon=":material/font_download:", layout="wide")
layout.apply()  # rows that reflow on a narrow screen (app_pages/layout.py)
navigation = st.navigation(
    [st.Page(p.file, title=p.title, icon=p.icon, url_path=p.url_path or None, default=not p.url_path) for p in PAGES]
)
navigation.run()
