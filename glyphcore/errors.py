"""Errors that glyphcore raises for bad input. Each message names the problem and the fix.

The CLI prints them as ``error: <message>`` (exit code 2) and the app shows them with
``st.error``; neither prints a traceback for these.
"""

from __future__ import annotations

__all__ = ["GlyphError", "DataError", "ConfigError", "CheckpointError", "RunError", "ImageInputError"]


class GlyphError(Exception):
    """Base class: a problem with the user's input or files, explained in the message."""


class DataError(GlyphError):
    """A data set, folder, array or image file is missing or not in the expected form."""


class ConfigError(GlyphError):
    """A training or model setting is invalid (unknown model, activation, size, budget...)."""


class CheckpointError(GlyphError):
    """A checkpoint is missing, foreign, unsafe or does not fit the model or classes."""


class RunError(GlyphError):
    """A run folder is missing, not a run, or in a state that does not allow the action."""


class ImageInputError(GlyphError):
    """A user image or drawing cannot be used (empty, not an image, truncated, odd mode...)."""
