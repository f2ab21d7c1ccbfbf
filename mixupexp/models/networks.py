"""The networks: the study's CNN (4 conv blocks then 2 fully connected layers) and PreAct ResNet-18.

Every model is a `BlockNetwork`: it takes images in [0, 1] and normalises them itself (mean/std of the training
set are buffers), so mixing and any pixel-space attack work on plain images; then it runs its `blocks` in turn and
its `head`. That one shape is all manifold mixup needs: `model(x, mix=plan)` mixes the hidden state after
`plan.after_blocks` blocks (0 = the normalised input).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

import torch
from torch import nn
from torch.nn import functional as F

from mixupexp.config.registry import register, registered
from mixupexp.config.schema import ConfigError

if TYPE_CHECKING:
    from mixupexp.augment.batch import HiddenMix


class BlockNetwork(nn.Module):
    """normalise -> blocks -> head; subclasses build `blocks` (an nn.ModuleList) and `head`."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).clone())
        self.register_buffer("std", std.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor, mix: Optional[HiddenMix] = None) -> torch.Tensor:
        h = (x - self.mean) / self.std
        for k, stage in enumerate([*self.blocks, self.head]):
            if mix is not None and k == mix.after_blocks:
                h = mix(h)
            h = stage(h)
        return h


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """conv -> BatchNorm -> ReLU -> 2x2 max-pool, computed as conv -> BatchNorm -> max-pool -> ReLU.

    ReLU and max are both non-decreasing, so relu(max(a, b, ...)) = max(relu(a), relu(b), ...) bit for bit, and the
    gradients are the same too: both orders send a window's gradient to its first maximum when that maximum is
    positive and nowhere otherwise. Pooling first runs ReLU and its backward on a quarter of the elements; on a
    CPU those full-resolution passes over the first block's activations cost about 4 % of a training step. The
    state dict is the same (ReLU and max-pool hold nothing) and so are the outputs, so checkpoints, saved models
    and results carry over."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.MaxPool2d(2),
        nn.ReLU(inplace=True),
    )


class SimpleCNN(BlockNetwork):
    def __init__(
        self,
        num_classes: int,
        image_shape: tuple[int, int, int],
        mean: torch.Tensor,
        std: torch.Tensor,
        widths=(32, 64, 128, 256),
        hidden: int = 256,
    ):
        super().__init__(mean, std)
        channels, height, width = image_shape
        shrink = 2 ** len(widths)
        if height < shrink or width < shrink:
            raise ValueError(f"images of {height}x{width} are too small for {len(widths)} pooling blocks")
        ins = [channels, *widths[:-1]]
        self.blocks = nn.ModuleList(conv_block(i, o) for i, o in zip(ins, widths))
        flat = widths[-1] * (height // shrink) * (width // shrink)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes)
        )



class PreActBlock(nn.Module):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3 plus the identity (a 1x1 conv where the
    shape changes), as in He et al. 2016, "Identity Mappings in Deep Residual Networks"."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        # The projection takes the pre-activated input, as in the reference implementation.
        shortcut = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(F.relu(self.bn2(out)))
        return out + shortcut


class PreActResNet18(BlockNetwork):
    """PreAct ResNet-18 for 32x32 images (the mixup paper's CIFAR model): a 3x3 stem conv, 4 stages of 2
    pre-activation blocks (`widths` channels, stride 1, 2, 2, 2), BN-ReLU, global average pool, linear.

    The stem belongs to the first block, so `mix.after_blocks` 0, 1, 2 are the input and the outputs of the
    first two stages: the layers manifold mixup mixes in its paper."""

    def __init__(self, num_classes: int, image_shape, mean, std, widths=(64, 128, 256, 512)):
        super().__init__(mean, std)
        channels = image_shape[0]
        stages, in_channels = [], widths[0]
        for i, width in enumerate(widths):
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(PreActBlock(in_channels, width, stride), PreActBlock(width, width, 1)))
            in_channels = width
        stem = nn.Conv2d(channels, widths[0], 3, padding=1, bias=False)
        stages[0] = nn.Sequential(stem, *stages[0])
        self.blocks = nn.ModuleList(stages)
        self.head = nn.Sequential(
            nn.BatchNorm2d(widths[-1]), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(widths[-1], num_classes),
        )


@register("model", "simple_cnn")
def simple_cnn(cfg, num_classes: int, image_shape, mean, std) -> nn.Module:
    """The study's CNN: 4 conv blocks and 2 fully connected layers."""
    return SimpleCNN(num_classes, image_shape, mean, std, widths=list(cfg.widths), hidden=cfg.hidden)


@register("model", "preact_resnet18", ignores=("model.hidden",))
def preact_resnet18(cfg, num_classes: int, image_shape, mean, std) -> nn.Module:
    """PreAct ResNet-18, the network of Zhang et al.'s CIFAR-10 experiments."""
    return PreActResNet18(num_classes, image_shape, mean, std, widths=list(cfg.widths))


def smallest_image_side(cfg) -> int:
    """The smallest image side the model `cfg` takes: simple_cnn halves the image in each of its blocks (a 2×2
    max-pool), PreAct ResNet-18's strided convolutions and global pooling take any size."""
    return 2 ** len(cfg.widths) if cfg.name == "simple_cnn" else 1


def check_image_size(cfg, size: tuple[int, int], what: str, resizable: bool = True) -> None:
    """ConfigError naming model.widths if images of `size` (height, width) are too small for the model `cfg`."""
    need, side = smallest_image_side(cfg), min(size)
    if side >= need:
        return
    blocks = max(side.bit_length() - 1, 0)  # the most halvings that leave at least one pixel
    fixes = [f"at most {blocks} values in model.widths"] if blocks else []
    if resizable:
        fixes.append(f"data.image_size={need} or more")
    raise ConfigError(
        f"model.widths={list(cfg.widths)} has {len(cfg.widths)} blocks, each halving the image: {what} "
        f"({size[0]}×{size[1]}) would shrink to nothing; use {' or '.join(fixes)}"
    )


def build_model(cfg, num_classes: int, image_shape, mean, std) -> nn.Module:
    """The model that `cfg.name` (the `model` config group) names."""
    return registered("model")[cfg.name].build(cfg, num_classes, image_shape, mean, std)
