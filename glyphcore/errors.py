"""Errors that glyphcore raises for bad input. Each message names the problem and the fix.

The CLI prints them as ``error: <message>`` (exit code 2) and the app shows them with
``st.error``; neither prints a traceback for these.
"""

from __future__ import annotations

import errno
import os

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "GlyphError",
    "ImageInputError",
    "RunError",
    "os_reason",
]


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


# What a user should read for the OS errors a write can meet (the errno's own text is added).
_OS_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}


def os_reason(e: OSError) -> str:
    """A one-line reason for an OS error: ``disk full (No space left on device: 'x/last.pt')``."""
    text = e.strerror or str(e) or type(e).__name__
    if e.filename is not None:
        text += f": {os.fsdecode(e.filename)!r}" if not isinstance(e.filename, int) else ""
    reason = _OS_REASONS.get(e.errno) if e.errno is not None else None
    return f"{reason} ({text})" if reason else text
