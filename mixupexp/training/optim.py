"""The `optimizer` config group: the optimizer and its learning-rate schedule."""

from __future__ import annotations

import torch

from mixupexp.config.registry import register, registered


@register("optimizer", "adam", ignores=("optimizer.momentum", "optimizer.nesterov"),
          summary="Adam, as the study trains (lr 1e-3), with PyTorch's fused kernel.")
def adam(cfg, params, device: torch.device) -> torch.optim.Optimizer:
    """Adam, as the study trains (lr 1e-3), with the fused kernel: one pass over each parameter instead of about
    ten elementwise ops; on CUDA also capturable, so that a CUDA graph can replay it. It is the same update up to
    the order of floating-point operations (tests/test_engine.py)."""
    extra = {"fused": True, "capturable": True} if device.type == "cuda" else {"fused": device.type == "cpu"}
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)


@register("optimizer", "sgd")
def sgd(cfg, params, device: torch.device) -> torch.optim.Optimizer:
    """SGD with (Nesterov) momentum, the usual optimizer of the ResNet recipes."""
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                           weight_decay=cfg.weight_decay)


def build_optimizer(cfg, params, device: torch.device) -> torch.optim.Optimizer:
    """The optimizer that `cfg.name` (the `optimizer` config group) names."""
    return registered("optimizer")[cfg.name].build(cfg, params, device)


def build_schedule(cfg, optimizer: torch.optim.Optimizer, epochs: int):
    """The learning-rate schedule of the `optimizer` group, stepped once per epoch; None for a constant lr."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None
