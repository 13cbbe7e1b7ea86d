"""A malicious torch hub cache and a data-only checkpoint that asks for pretrained weights: the attack
on a model rebuilt from a file (``from hub_trap import plant_hub_trap, pretrained_resnet_checkpoint``)."""

from __future__ import annotations

from pathlib import Path

import torch

from glyphcore.checkpoint import save_checkpoint

__all__ = ["LETTERS", "RESNET18_FILE", "plant_hub_trap", "pretrained_resnet_checkpoint"]

LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's ImageNet weights, as torch hub names them in its cache


class _Payload:
    """Pickled, it runs ``exec`` on load: the attack a weights_only=False load would fall for."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def plant_hub_trap(tmp_path: Path, monkeypatch) -> Path:
    """Point TORCH_HOME at a folder whose hub cache holds a malicious file under resnet18's name.

    Returns:
        The marker file the pickle writes if it is ever unpickled.
    """
    torch_home = tmp_path / "torch-home"
    cache = torch_home / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    marker = tmp_path / "code-ran.txt"
    torch.save(_Payload(marker), cache / RESNET18_FILE)
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    monkeypatch.delenv("TORCH_HUB", raising=False)
    return marker


def pretrained_resnet_checkpoint(path: Path, classes: list[str], size: int, data: str = "glyphs-52") -> Path:
    """A data-only checkpoint (it passes a weights_only load) whose model_args ask for ImageNet weights."""
    from glyphcore.models import create_model

    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=len(classes), in_channels=1, input_size=size)
    args = {**model.glyph_args, "pretrained": True}
    save_checkpoint(
        {
            "model_name": "resnet18",
            "model_args": args,
            "classes": classes,
            "frame": None,
            "config": {"data": data, "model": "resnet18"},
            "dataset": {"id": data, "hash": None},
            "state_dict": {k: v.clone() for k, v in model.state_dict().items()},
            "epoch": 1,
        },
        path,
    )
    return path
