"""Value checks of a composed config that a type cannot express (alpha > 0, ratio in [0, 1], ...): `validate` runs before anything is trained or written."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import torch

from mixupexp.config.options import choices
from mixupexp.config.schema import (
    AugmentConfig,
    Config,
    ConfigError,
    DataConfig,
    EvalConfig,
    LoggerConfig,
    ModelConfig,
    OptimizerConfig,
    TrainerConfig,
)

# Checked only when the logger is chosen.
LOGGER_CHOICES = {"logger.wandb.mode": ("offline", "online", "disabled")}


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _check_known_keys(cfg: Any, schema: type, prefix: str = "") -> None:
    # A `+key=value` override adds keys even to structured configs; a typo there must not pass silently.
    known = {f.name: f.type for f in fields(schema)}
    for key in cfg.keys():
        if key == "hydra":
            continue
        if key not in known:
            raise ConfigError(f"unknown key {prefix}{key}; known keys: {', '.join(known)}")
        value = cfg[key]
        nested = {ModelConfig, DataConfig, AugmentConfig, OptimizerConfig, TrainerConfig, EvalConfig, LoggerConfig}
        child = next((t for t in nested if t.__name__ == known[key] or t is known[key]), None)
        if child is not None:
            _check_known_keys(value, child, f"{prefix}{key}.")


def validate(cfg: Any) -> None:
    """Raise ConfigError for the first value that cannot work; `cfg` is the composed config."""
    _check_known_keys(cfg, Config)
    for key, allowed in choices().items():
        value = _get(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is not one of {', '.join(allowed)}")
    for key, allowed in LOGGER_CHOICES.items():
        chosen = cfg.logger.get(key.split(".")[1])
        if chosen is not None and _get(cfg, key) not in allowed:
            raise ConfigError(f"{key}={_get(cfg, key)!r} is not one of {', '.join(allowed)}")
    positive = {
        "trainer.epochs": cfg.trainer.epochs,
        "trainer.batch_size": cfg.trainer.batch_size,
        "trainer.eval_batch_size": cfg.trainer.eval_batch_size,
        "trainer.eval_every": cfg.trainer.eval_every,
        "optimizer.lr": cfg.optimizer.lr,
        "model.hidden": cfg.model.hidden,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{key}={value} must be > 0")
    if cfg.trainer.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA GPU is available; use trainer.device=auto or cpu")
    if cfg.trainer.threads is not None and cfg.trainer.threads < 1:
        raise ConfigError(f"trainer.threads={cfg.trainer.threads} must be >= 1 (or null for every core)")
    if cfg.trainer.num_workers < 0:
        raise ConfigError(f"trainer.num_workers={cfg.trainer.num_workers} must be >= 0")
    if cfg.optimizer.weight_decay < 0:
        raise ConfigError(f"optimizer.weight_decay={cfg.optimizer.weight_decay} must be >= 0")
    if not cfg.model.widths or any(w <= 0 for w in cfg.model.widths):
        raise ConfigError(f"model.widths={list(cfg.model.widths)} must be a non-empty list of positive ints")
    if cfg.augment.name != "none" and not cfg.augment.alpha > 0:
        raise ConfigError(f"augment.alpha={cfg.augment.alpha} must be > 0 for augment={cfg.augment.name}")
    if not 0 <= cfg.augment.ratio <= 1:
        raise ConfigError(f"augment.ratio={cfg.augment.ratio} must be in [0, 1]")
    if not 0 <= cfg.augment.label_smoothing < 1:
        raise ConfigError(f"augment.label_smoothing={cfg.augment.label_smoothing} must be in [0, 1)")
    blocks, num_blocks = list(cfg.augment.mix_after_blocks), len(cfg.model.widths)  # every model: a block per width
    if cfg.augment.name == "manifold_mixup" and (not blocks or not all(0 <= b <= num_blocks for b in blocks)):
        raise ConfigError(
            f"augment.mix_after_blocks={blocks} must be a non-empty list of block counts in "
            f"[0, {num_blocks}] (0 = the input) for model={cfg.model.name}"
        )
    if cfg.model.name == "preact_resnet18" and len(cfg.model.widths) != 4:
        raise ConfigError(f"model.widths={list(cfg.model.widths)} must list the 4 stage widths of preact_resnet18")
    if cfg.optimizer.schedule == "step" and not cfg.optimizer.gamma > 0:
        raise ConfigError(f"optimizer.gamma={cfg.optimizer.gamma} must be > 0")
    milestones = list(cfg.optimizer.milestones)
    if cfg.optimizer.schedule == "step" and (milestones != sorted(milestones) or any(m <= 0 for m in milestones)):
        raise ConfigError(f"optimizer.milestones={milestones} must be increasing positive epochs")
    if any(not 0 <= eps <= 255 for eps in cfg.eval.fgsm_eps):
        raise ConfigError(f"eval.fgsm_eps={list(cfg.eval.fgsm_eps)} must be values in [0, 255] (units of 1/255)")
    if cfg.data.train_subset is not None and cfg.data.train_subset <= 0:
        raise ConfigError(f"data.train_subset={cfg.data.train_subset} must be > 0 (or null for all)")
    if cfg.data.val_size is not None and cfg.data.val_size < 0:
        raise ConfigError(f"data.val_size={cfg.data.val_size} must be >= 0 (0 or null: no validation split)")
    if cfg.data.name in ("image_folder",) and not cfg.data.root:
        raise ConfigError("data.root is not set: data=image_folder needs data.root=DIR (with train/ and test/)")
    if cfg.data.name == "synthetic":
        for key in ("num_train", "num_test", "num_classes"):
            if getattr(cfg.data, key) <= 0:
                raise ConfigError(f"data.{key}={getattr(cfg.data, key)} must be > 0")
        if cfg.data.num_classes < 2:
            raise ConfigError(f"data.num_classes={cfg.data.num_classes} must be >= 2")
    from mixupexp.tracking.loggers import check_packages

    check_packages(cfg)
