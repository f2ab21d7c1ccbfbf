"""Value checks of a composed config that a type cannot express (alpha > 0, ratio in [0, 1], ...): `validate` runs before anything is trained or written."""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import fields
from typing import Any

import torch
from omegaconf import OmegaConf

from mixupexp.config.options import choices
from mixupexp.config.schema import Config, ConfigError

CACHE_VERIFY = ("stat", "content")
# Checked only when the logger is chosen.
LOGGER_CHOICES = {"logger.wandb.mode": ("offline", "online", "disabled")}


def _get(cfg: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _dataclass_of(annotation: Any) -> Any:
    """The dataclass a field holds (Optional[X] -> X), or None for a plain value."""
    if dataclasses.is_dataclass(annotation):
        return annotation
    return next((arg for arg in typing.get_args(annotation) if dataclasses.is_dataclass(arg)), None)


def _check_known_keys(cfg: Any, schema: type, prefix: str = "") -> None:
    # A `+key=value` override adds keys even to structured configs; a typo there must not pass silently.
    known = [f.name for f in fields(schema)]
    hints = typing.get_type_hints(schema)  # the types, which `from __future__ import annotations` leaves as text
    for key in cfg.keys():
        if key == "hydra":
            continue
        if key not in known:
            raise ConfigError(f"unknown key {prefix}{key}; known keys: {', '.join(known)}")
        value = cfg[key]
        child = _dataclass_of(hints[key])
        if child is not None and value is not None and hasattr(value, "keys"):
            _check_known_keys(value, child, f"{prefix}{key}.")


SEED_MAX = 2**32 - 1  # NumPy's legacy seed and torch's DataLoader generator take seeds in [0, 2**32)
# The longest schedules published for these models are a few thousand epochs; more is a typo, not a study, and
# would run for years without a word.
MAX_EPOCHS = 100_000


def _finite(key: str, value: float, at_least: float = 0.0, above: bool = False) -> None:
    """ConfigError unless `value` is a finite number >= at_least (> at_least where `above`)."""
    ok = math.isfinite(value) and (value > at_least if above else value >= at_least)
    if not ok:
        raise ConfigError(f"{key}={value} must be a finite number {'>' if above else '>='} {at_least:g}")


def _known_image_size(cfg: Any) -> tuple[int, bool] | None:
    """(side, resizable) of the data's images where the config alone tells it, else None (an image folder
    without data.image_size: checked when it is loaded)."""
    if cfg.data.name == "synthetic":
        return (cfg.data.image_size or 32), True
    if cfg.data.name in ("cifar10", "svhn"):
        return 32, False
    if cfg.data.image_size is not None:
        return cfg.data.image_size, True
    return None


def _check_numbers(cfg: Any) -> None:
    """The numeric values that fail only at run time (in NumPy, torch or the model) or train on garbage."""
    if not 0 <= cfg.seed <= SEED_MAX:
        raise ConfigError(f"seed={cfg.seed} must be an integer in [0, {SEED_MAX}]")
    optimizer = cfg.optimizer
    _finite("optimizer.lr", optimizer.lr, above=True)
    _finite("optimizer.weight_decay", optimizer.weight_decay)
    if optimizer.name == "sgd":
        if not (math.isfinite(optimizer.momentum) and 0 <= optimizer.momentum < 1):
            raise ConfigError(f"optimizer.momentum={optimizer.momentum} must be in [0, 1) (0.9 is usual)")
        if optimizer.nesterov and optimizer.momentum == 0:
            raise ConfigError("optimizer.nesterov=true needs optimizer.momentum > 0; set a momentum (0.9 is usual) "
                              "or optimizer.nesterov=false")
    if optimizer.schedule == "step":
        _finite("optimizer.gamma", optimizer.gamma, above=True)
    if cfg.augment.name != "none" and not math.isfinite(cfg.augment.alpha):
        raise ConfigError(f"augment.alpha={cfg.augment.alpha} must be a finite number > 0 for "
                          f"augment={cfg.augment.name}")
    data = cfg.data
    if data.image_size is not None and data.image_size < 1:
        raise ConfigError(f"data.image_size={data.image_size} must be >= 1 (or null to keep the images' size)")
    if data.name == "synthetic":
        if data.data_seed < 0:
            raise ConfigError(f"data.data_seed={data.data_seed} must be >= 0")
        _finite("data.signal", data.signal)
        _finite("data.noise", data.noise)
    known = _known_image_size(cfg)
    if known is not None:
        from mixupexp.models.networks import check_image_size

        side, resizable = known
        check_image_size(cfg.model, (side, side), f"the images of data={data.name}", resizable=resizable)


def _check_threads(cfg: Any) -> None:
    """More threads than cores only slows every kernel down, and torch's allocator fails on absurd counts without
    naming the key. A command submitted to a cluster is checked by each job on its node: the cores here say
    nothing of the node's."""
    from mixupexp.training.device import available_cores

    launcher = str(OmegaConf.select(cfg, "hydra.launcher._target_", default="") or "") if "hydra" in cfg else ""
    if cfg.trainer.threads is None or "submitit" in launcher:
        return
    cores = available_cores()
    if cfg.trainer.threads > cores:
        raise ConfigError(f"trainer.threads={cfg.trainer.threads} is more than the {cores} cores this process may "
                          f"use; use at most {cores} (or null for its share of them)")


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
    _check_threads(cfg)
    if cfg.trainer.epochs > MAX_EPOCHS:
        raise ConfigError(f"trainer.epochs={cfg.trainer.epochs} is more than {MAX_EPOCHS:,} epochs, the most a run "
                          "may ask for; python -m mixupexp.plan ARGS says how long a run of N epochs would take")
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
    if cfg.data.name == "image_folder" and cfg.data.cache_verify not in CACHE_VERIFY:
        raise ConfigError(f"data.cache_verify={cfg.data.cache_verify!r} is not one of {', '.join(CACHE_VERIFY)}")
    if cfg.data.name in ("image_folder",) and not cfg.data.root:
        raise ConfigError("data.root is not set: data=image_folder needs data.root=DIR (with train/ and test/)")
    if cfg.data.name == "synthetic":
        for key in ("num_train", "num_test", "num_classes"):
            if getattr(cfg.data, key) <= 0:
                raise ConfigError(f"data.{key}={getattr(cfg.data, key)} must be > 0")
        if cfg.data.num_classes < 2:
            raise ConfigError(f"data.num_classes={cfg.data.num_classes} must be >= 2")
    _check_numbers(cfg)
    from mixupexp.tracking.loggers import check_packages

    check_packages(cfg)
