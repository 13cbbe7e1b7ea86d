"""Text from files made safe for a terminal: ``terminal_text``.

A run name, a class name, a status message or a log line comes from a file anyone may have
written; printed as it is, an escape sequence in it could retitle the terminal, hide lines, fake
output or (OSC 52) write the clipboard. Every such string the command line prints goes through here.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["terminal_text"]

# ESC sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL|ST", two-byte "ESC x"), a lone ESC, the
# 8-bit C1 controls (0x80-0x9f: CSI 0x9b, OSC 0x9d...), DEL, the C0 controls but tab and newline,
# and the bidirectional overrides and line separators.
_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -~]?"
    r"|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
    r"|[\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]"  # bidi overrides reorder what is shown
)


def terminal_text(value: Any) -> str:
    """``str(value)`` with every terminal control sequence and control character removed (tab and
    newline kept): what is left prints as plain text.

    >>> terminal_text("run\\x1b]0;owned\\x07-1\\x1b[2J")
    'run-1'
    """
    return _CONTROL.sub("", str(value))
