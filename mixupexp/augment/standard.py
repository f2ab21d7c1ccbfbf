"""Standard CIFAR augmentation (`data.basic_augment`): random crop with 4-pixel zero padding + horizontal flip.

torchvision's RandomCrop / RandomHorizontalFlip draw one offset and one flip per call, i.e. per batch when given
a batch; here every image of a batch gets its own, in one gather on the batch's device (uint8 or float).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def random_crop_flip(images: torch.Tensor, padding: int = 4) -> torch.Tensor:
    """Each image of the N×C×H×W batch zero-padded by `padding` on every side, cropped back to H×W at its own
    uniformly random offset, then flipped left-right with probability 1/2."""
    n, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding,) * 4)
    top = torch.randint(2 * padding + 1, (n, 1), device=device)
    left = torch.randint(2 * padding + 1, (n, 1), device=device)
    flip = torch.rand(n, 1, device=device) < 0.5
    cols = torch.arange(w, device=device)
    rows = torch.arange(h, device=device) + top  # n×h
    cols = torch.where(flip, w - 1 - cols, cols) + left  # n×w: the crop's columns, reversed when flipped
    batch = torch.arange(n, device=device)[:, None, None, None]
    channel = torch.arange(c, device=device)[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
