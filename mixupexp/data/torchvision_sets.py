"""CIFAR-10 and SVHN through torchvision, downloaded into `data.root` unless they are there."""

from __future__ import annotations

import os

import numpy as np
import torch

from mixupexp.config.registry import register
from mixupexp.data.images import SYNTHETIC_ONLY, DataError, ImageData


def _offline_hint(name: str, root: str) -> str:
    return (
        f"{name} is not in {root} and could not be downloaded; connect to the internet, or use "
        f"data=image_folder data.root=DIR (DIR/train/<class>/*, DIR/test/<class>/*) or data=synthetic"
    )


@register("data", "cifar10", ignores=("data.image_size", *SYNTHETIC_ONLY), locates=("data.root",))
def _load_cifar10(cfg) -> ImageData:
    """CIFAR-10 through torchvision (downloaded into data.root unless it is there)."""
    from torchvision.datasets import CIFAR10

    root = os.path.expanduser(cfg.root)
    try:
        train = CIFAR10(root, train=True, download=cfg.download)
        test = CIFAR10(root, train=False, download=cfg.download)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a missing set without download a RuntimeError
        raise DataError(f"{_offline_hint('CIFAR-10', root)} ({type(e).__name__}: {e})") from e

    def to_tensors(ds):
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return images, torch.tensor(ds.targets, dtype=torch.int64)

    return ImageData(*to_tensors(train), *to_tensors(test), classes=list(train.classes))


@register("data", "svhn", ignores=("data.image_size", *SYNTHETIC_ONLY), locates=("data.root",))
def _load_svhn(cfg) -> ImageData:
    """SVHN (train and test splits) through torchvision."""
    from torchvision.datasets import SVHN

    root = os.path.expanduser(cfg.root)
    try:
        train = SVHN(root, split="train", download=cfg.download)
        test = SVHN(root, split="test", download=cfg.download)
    except (OSError, RuntimeError) as e:
        raise DataError(f"{_offline_hint('SVHN', root)} ({type(e).__name__}: {e})") from e

    def to_tensors(ds):
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))

    return ImageData(*to_tensors(train), *to_tensors(test), classes=[str(i) for i in range(10)])
