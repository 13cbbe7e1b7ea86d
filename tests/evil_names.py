"""Class names that are markup: a checkpoint whose classes would run script if a page put them into
HTML unescaped. Each sets ``window.__pwned`` and the document title when it runs."""

from __future__ import annotations

from pathlib import Path

from glyphcore.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["EVIL_NAMES", "make_classes_evil"]

EVIL_NAMES = (
    "<img src=x onerror=\"window.__pwned=1;document.title='pwned'\">",
    "<iframe srcdoc=\"<script>parent.__pwned=1;parent.document.title='pwned'</script>\"></iframe>",
    "' onmouseover='window.__pwned=1' data-x='",
    "`</span><script>window.__pwned=1</script>``",
)


def make_classes_evil(ckpt_path: Path) -> list[str]:
    """Rename every class of a checkpoint to a markup name (kept distinct by an index); the file is
    re-saved with glyphcore's own writer, so its checksums hold: a crafted file need not break them."""
    ckpt = load_checkpoint(ckpt_path)
    classes = [f"{EVIL_NAMES[i % len(EVIL_NAMES)]}{i}" for i in range(len(ckpt["classes"]))]
    ckpt["classes"] = classes
    save_checkpoint(ckpt, ckpt_path)
    return classes
