"""torchvision's ImageNet weights: which file each classifier needs, its size, the cache, the download.

The rules, for every architecture alike:

* a weights file is fetched only by an explicit request (``download_weights``, ``glyphcore models
  download NAME``, or resnet18's own ``pretrained=True``), and its size is known before it starts
  (``WeightsFile.size_mb``, torchvision's published figure);
* torch hub names each file with a prefix of its sha256 (``resnet50-11ad3fa6.pth``): a download is
  checked against it by torch, and a file already in the cache is checked here before it is read,
  because torch checks only what it downloads itself -- a planted or damaged file is refused;
* a file is read with ``torch.load(weights_only=True)``: a weights file is never a pickle that runs.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from glyphcore.errors import ConfigError

__all__ = [
    "WeightsFile",
    "IMAGENET_WEIGHTS",
    "weights_file",
    "cache_dir",
    "cached_weights",
    "load_weights",
    "download_weights",
]


@dataclass(frozen=True)
class WeightsFile:
    """One torchvision ImageNet weights file.

    Attributes:
        arch: torchvision's model name (``resnet50``).
        url: where torch hub downloads it from; its file name carries a sha256 prefix.
        size_mb: the file's size in MB (10**6 bytes), as torchvision publishes it.
        num_params: parameters of torchvision's model with its 1000-class ImageNet head.
    """

    arch: str
    url: str
    size_mb: float
    num_params: int

    @property
    def file_name(self) -> str:
        """The name torch hub stores it under (``resnet50-11ad3fa6.pth``)."""
        return Path(self.url).name

    @property
    def sha256_prefix(self) -> str:
        """The hex prefix of the file's sha256 that its name carries."""
        found = re.search(r"-([a-f0-9]{6,64})\.", self.file_name)
        if found is None:
            raise ConfigError(f"{self.url} carries no sha256 prefix in its name: it cannot be verified")
        return found.group(1)


def _torchvision_weights(arch: str) -> WeightsFile:
    from torchvision.models import get_model_weights

    weights = get_model_weights(arch).IMAGENET1K_V1  # the weights the reports' Keras models used
    meta = weights.meta
    return WeightsFile(arch, weights.url, float(meta["_file_size"]), int(meta["num_params"]))


#: architecture -> its ImageNet weights file (the transfer zoo's nets and resnet18).
IMAGENET_WEIGHTS: dict[str, WeightsFile] = {
    arch: _torchvision_weights(arch)
    for arch in ("resnet18", "resnet50", "vgg16_bn", "densenet121", "mobilenet_v3_small", "efficientnet_b0")
}


def weights_file(arch: str) -> WeightsFile:
    """The weights file of ``arch``; ConfigError naming the known ones if there is none."""
    if arch not in IMAGENET_WEIGHTS:
        raise ConfigError(f"no ImageNet weights are known for {arch!r}: choose one of {', '.join(IMAGENET_WEIGHTS)}")
    return IMAGENET_WEIGHTS[arch]


def cache_dir() -> Path:
    """torch hub's weights cache (``$TORCH_HOME/hub/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):  # 1 MiB at a time
            digest.update(block)
    return digest.hexdigest()


def cached_weights(arch: str) -> Path | None:
    """The verified cached file of ``arch``, or None when it is not downloaded.

    Raises:
        ConfigError: a file of that name is there but its sha256 does not match: says to delete it.
    """
    w = weights_file(arch)
    path = cache_dir() / w.file_name
    if not path.is_file():
        return None
    if not _sha256(path).startswith(w.sha256_prefix):
        raise ConfigError(
            f"{path} is not torchvision's {arch} weights file (its sha256 does not start with "
            f"{w.sha256_prefix}): delete it and download {w.url} again, or train without pretrained"
        )
    return path


def _read(path: Path, arch: str) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ConfigError(
            f"refused {path}: it stores Python objects that would run code when loaded; delete it and "
            f"download {weights_file(arch).url} again, or train without pretrained"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"{path} holds no state_dict of tensors: delete it and download it again")
    return state


def load_weights(arch: str) -> dict[str, torch.Tensor]:
    """The ImageNet state_dict of ``arch`` from the cache (verified first); never downloads.

    Raises:
        ConfigError: not downloaded (says how to get it and how big it is), damaged, or a pickle.
    """
    path = cached_weights(arch)
    if path is None:
        w = weights_file(arch)
        raise ConfigError(
            f"the ImageNet weights for {arch} are not downloaded ({w.size_mb:.1f} MB): fetch them with "
            f"`python -m glyphcore models download {arch}`, or put {w.url} into {cache_dir()}, "
            f"or train from scratch (pretrained off)"
        )
    return _read(path, arch)


def download_weights(arch: str, *, progress: bool = False, announce: Callable[[str], None] | None = None) -> Path:
    """Download the ImageNet weights of ``arch`` into torch hub's cache, verified by its sha256 prefix.

    Args:
        arch: a key of ``IMAGENET_WEIGHTS``.
        progress: torch's download progress bar on stderr.
        announce: called with one line (what, how big, where to) before anything is fetched.

    Returns:
        The verified file (at once, without a download, when it is cached already).

    Raises:
        ConfigError: the download failed or its hash does not match (says why and what to do).
    """
    w = weights_file(arch)
    path = cached_weights(arch)
    if path is not None:
        return path
    target = cache_dir() / w.file_name
    if announce is not None:
        announce(f"downloading {arch}'s ImageNet weights: {w.size_mb:.1f} MB from {w.url} to {target}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(w.url, str(target), hash_prefix=w.sha256_prefix, progress=progress)
    except Exception as e:  # URLError, HTTPError, OSError, a bad hash: all mean "not available"
        raise ConfigError(
            f"the ImageNet weights for {arch} could not be downloaded ({type(e).__name__}: {e}). "
            f"Download {w.url} on a connected machine and put it into {cache_dir()}, or train from scratch"
        ) from e
    verified = cached_weights(arch)
    if verified is None:  # download_url_to_file moves the verified file into place: nothing else may remove it
        raise ConfigError(f"{target} vanished right after its download: is another process cleaning {cache_dir()}?")
    return verified
