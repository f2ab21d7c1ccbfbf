"""The study's network: 4 conv blocks then 2 fully connected layers.

The model takes images in [0, 1] and normalises them itself (mean/std of the training set are buffers), so
mixing and any pixel-space attack work on plain images.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SimpleCNN(nn.Module):
    def __init__(
        self,
        num_classes: int,
        image_shape: tuple[int, int, int],
        mean: torch.Tensor,
        std: torch.Tensor,
        widths=(32, 64, 128, 256),
        hidden: int = 256,
    ):
        super().__init__()
        channels, height, width = image_shape
        shrink = 2 ** len(widths)
        if height < shrink or width < shrink:
            raise ValueError(f"images of {height}x{width} are too small for {len(widths)} pooling blocks")
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())
        ins = [channels, *widths[:-1]]
        self.blocks = nn.ModuleList(conv_block(i, o) for i, o in zip(ins, widths))
        flat = widths[-1] * (height // shrink) * (width // shrink)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.mean) / self.std
        for block in self.blocks:
            x = block(x)
        return self.head(x)


def build_model(cfg, num_classes: int, image_shape, mean, std) -> nn.Module:
    """Build the model named by `cfg` (the `model` config group)."""
    if cfg.name == "simple_cnn":
        return SimpleCNN(num_classes, image_shape, mean, std, widths=list(cfg.widths), hidden=cfg.hidden)
    raise ValueError(f"unknown model {cfg.name}")
