"""What every data source ends in: uint8 images and int64 labels per split (`ImageData`), and the error a source raises."""

from __future__ import annotations

from dataclasses import dataclass

import torch


class DataError(RuntimeError):
    """The data cannot be loaded; the message says why and what to do instead."""


@dataclass
class ImageData:
    train_images: torch.Tensor  # uint8, N×C×H×W
    train_labels: torch.Tensor  # int64, N
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: list[str]
    # Held out of the training images (data.val_size); None without a validation split.
    val_images: torch.Tensor | None = None
    val_labels: torch.Tensor | None = None

    @property
    def has_validation(self) -> bool:
        return self.val_labels is not None and len(self.val_labels) > 0

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training images in [0, 1] units."""
        x = self.train_images
        n = x.numel() / x.shape[1]
        total = torch.zeros(x.shape[1], dtype=torch.float64)
        total_sq = torch.zeros(x.shape[1], dtype=torch.float64)
        for chunk in x.split(4096):  # chunks keep the float64 copy small for 50 000 images
            chunk = chunk.double()
            total += chunk.sum(dim=(0, 2, 3))
            total_sq += (chunk**2).sum(dim=(0, 2, 3))
        mean = total / n
        std = (total_sq / n - mean**2).clamp_min(1e-12).sqrt()
        return (mean / 255).float(), (std / 255).float()


# The keys that only generated data use (data=synthetic): every other data option ignores them.
SYNTHETIC_ONLY = ("data.num_train", "data.num_test", "data.num_classes", "data.signal", "data.noise", "data.data_seed")
