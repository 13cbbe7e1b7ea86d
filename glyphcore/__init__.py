"""glyphcore: the engine of Glyph Explorer (data, models, training, runs, evaluation, inference).

glyphcore never imports streamlit; the app's pages call into it with plain values.
"""

__version__ = "0.1.0"
