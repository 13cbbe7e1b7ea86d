"""How the browser tests and ``bench/app_render.py`` drive Debian's Chromium against the app."""

from __future__ import annotations

__all__ = ["APP_READY", "CHROMIUM_ARGS"]

# Flags for Debian's chromium in a container: no sandbox (root), no GPU, nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The app has finished its script run (nothing pending): what every wait ends on.
APP_READY = "[data-testid=stApp][data-test-script-state=notRunning]"
