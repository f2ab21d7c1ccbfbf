"""`data=synthetic`: generated data, deterministic and offline, for tests and quick runs."""

from __future__ import annotations

import numpy as np
import torch

from mixupexp.config.registry import register
from mixupexp.data.images import ImageData


@register("data", "synthetic", ignores=(
    "data.root", "data.download", "data.cache_dir", "data.cache_verify"))
def make_synthetic(cfg) -> ImageData:
    """A small, deterministic, CIFAR-shaped data set with a learnable signal and no download.

    Each class has a smooth colour template (std `signal`); an image is its class template, shifted by a few
    pixels and scaled in contrast, plus Gaussian pixel noise (std `noise`), both in 0..255 units. The signal is
    weak against the noise, so that a few epochs reach a clearly-above-chance accuracy that is not 100 % and
    leaves room for a regulariser to matter. The data depend on `data_seed` only.
    """
    size = cfg.image_size or 32
    rng = np.random.default_rng(cfg.data_seed)
    coarse = rng.normal(0.0, 1.0, size=(cfg.num_classes, 3, 4, 4))
    templates = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bicubic", align_corners=False
    ).numpy()
    templates *= cfg.signal / templates.std()

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = rng.integers(0, cfg.num_classes, size=n)
        contrast = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
        shifts = rng.integers(-3, 4, size=(n, 2))
        images = np.empty((n, 3, size, size))
        for k in range(n):
            images[k] = np.roll(templates[labels[k]], shift=tuple(shifts[k]), axis=(1, 2))
        images = 128.0 + contrast * images + rng.normal(0.0, cfg.noise, size=images.shape)
        return torch.from_numpy(images.clip(0, 255).round().astype(np.uint8)), torch.from_numpy(labels)

    train = split(cfg.num_train)
    test = split(cfg.num_test)
    return ImageData(*train, *test, classes=[f"class_{c}" for c in range(cfg.num_classes)])
