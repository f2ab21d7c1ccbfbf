"""Structured configs: the schema every YAML file in conf/ is merged into.

Registering the dataclasses with Hydra's ConfigStore makes a wrong type or an unknown key fail at start-up,
before any data is loaded. Value checks that a type cannot express (alpha > 0, ratio in [0, 1], ...) live in
`validate`, which runs on the composed config before training.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Optional

import torch
from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


class ConfigError(ValueError):
    """A config value that cannot work; the message says which key and how to fix it."""


@dataclass
class ModelConfig:
    name: str = "simple_cnn"
    # simple_cnn: channels of the conv blocks; preact_resnet18: channels of its 4 stages.
    widths: list[int] = field(default_factory=lambda: [32, 64, 128, 256])
    hidden: int = 256  # simple_cnn only


@dataclass
class DataConfig:
    name: str = MISSING
    root: Optional[str] = None
    download: bool = True
    # Use only the first N training images (a quick run); null = all.
    train_subset: Optional[int] = None
    # Hold out this many training images (a fixed random subset) as a validation split, measured every epoch
    # and used to pick the best configuration of a sweep; null or 0 = no split.
    val_size: Optional[int] = None
    # image_folder: resize every image to this square size; null = keep (all images must then agree).
    image_size: Optional[int] = None
    # image_folder: decoded tensors are cached here, keyed by the folder's path and contents.
    cache_dir: str = "~/.cache/mixupexp"
    # synthetic: size and difficulty of the generated data set (fixed by data_seed, not by the run's seed).
    num_train: int = 2000
    num_test: int = 500
    num_classes: int = 10
    signal: float = 6.0  # std of the class templates, 0..255 units
    noise: float = 60.0  # std of the pixel noise, 0..255 units
    data_seed: int = 1234
    # Random crop with 4-pixel padding + horizontal flip of every training image (off: the study has none).
    basic_augment: bool = False


@dataclass
class AugmentConfig:
    name: str = "none"
    # Beta(alpha, alpha) draws the mixing weight lambda of a mixed sample.
    alpha: float = 0.2
    # Probability that a training sample (mixup) or a batch (the other methods) is mixed each time it is drawn.
    ratio: float = 0.2
    # Soft targets become (1 - eps) * y + eps / K; applies to every method, none included.
    label_smoothing: float = 0.0
    # manifold_mixup: mix the hidden state after this many blocks (0 = the input), one drawn per batch.
    mix_after_blocks: list[int] = field(default_factory=lambda: [0, 1, 2])


@dataclass
class OptimizerConfig:
    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    nesterov: bool = False  # sgd only
    # Learning rate per epoch: none (constant), step (times gamma at each milestone epoch), cosine (to 0).
    schedule: str = "none"
    milestones: list[int] = field(default_factory=lambda: [100, 150])
    gamma: float = 0.1


@dataclass
class TrainerConfig:
    epochs: int = 30
    batch_size: int = 128
    # auto: CUDA when present, else CPU.
    device: str = "auto"
    # device: training set resident on the device, batches drawn and mixed with tensor ops (fast);
    # dataloader: the study's per-sample mixup Dataset behind a torch DataLoader (reference);
    # auto: device when the training set fits, else dataloader.
    loader: str = "auto"
    num_workers: int = 0
    # Training precision. auto: bf16 autocast on CUDA and on CPUs that compute bf16 natively, else fp32.
    # Evaluation is fp32 whatever this says, so that metrics mean the same on every device.
    precision: str = "auto"
    # Capture the training step in a CUDA graph (CUDA + device loader only); auto = on where possible.
    cuda_graph: str = "auto"
    eval_batch_size: int = 1000
    # CPU threads of torch's kernels, pinned at the start of every run: their count changes the order of
    # floating-point sums, so runs agree bit for bit only at the same count. null = every core of the machine
    # (whatever a launcher's worker was limited to).
    threads: Optional[int] = None
    # Show a progress bar per epoch; auto = only when stderr is a terminal.
    progress: str = "auto"
    # Continue an unfinished run found in the output directory (and skip a finished one); false starts afresh.
    resume: bool = True
    # Keep checkpoint.pt after a run finishes (it is always written at the end of each epoch).
    keep_checkpoint: bool = False
    # Keep the final weights as model.pt (a state dict), which `python -m mixupexp.evaluate` reads.
    save_model: bool = True


@dataclass
class EvalConfig:
    # FGSM strengths in units of 1/255 of the pixel range, evaluated once after training; [] = no attack.
    fgsm_eps: list[float] = field(default_factory=lambda: [1.0, 2.0, 4.0, 8.0])


@dataclass
class CsvLoggerConfig:
    """metrics.csv and result.json, which every run writes anyway (resume, the summary and evaluate read them)."""


@dataclass
class TensorBoardLoggerConfig:
    # Event files per run, in this folder of the run directory; `tensorboard --logdir SWEEP_DIR` compares a sweep.
    dir: str = "tensorboard"


@dataclass
class MlflowLoggerConfig:
    # null: a local store, ./mlruns/mlflow.db (SQLite) with artefacts in ./mlruns/artifacts.
    tracking_uri: Optional[str] = None
    experiment: str = "mixupexp"


@dataclass
class WandbLoggerConfig:
    project: str = "mixupexp"
    entity: Optional[str] = None
    # offline: records stay in the run directory (`wandb sync` uploads them later); online: streamed.
    mode: str = "offline"


@dataclass
class LoggerConfig:
    """The loggers chosen with `logger=NAME` or `logger=[NAME,NAME]`; an unchosen one stays null. They record a
    run and never change what it computes."""

    csv: Optional[CsvLoggerConfig] = None
    tensorboard: Optional[TensorBoardLoggerConfig] = None
    mlflow: Optional[MlflowLoggerConfig] = None
    wandb: Optional[WandbLoggerConfig] = None


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    seed: int = 0


CHOICES = {
    "model.name": ("simple_cnn", "preact_resnet18"),
    "data.name": ("cifar10", "svhn", "image_folder", "synthetic"),
    "augment.name": ("none", "mixup", "mixup_batch", "cutmix", "manifold_mixup"),
    "optimizer.name": ("adam", "sgd"),
    "optimizer.schedule": ("none", "step", "cosine"),
    "trainer.device": ("auto", "cpu", "cuda"),
    "trainer.loader": ("auto", "device", "dataloader"),
    "trainer.precision": ("auto", "fp32", "bf16"),
    "trainer.cuda_graph": ("auto", "on", "off"),
    "trainer.progress": ("auto", "on", "off"),
}
# Checked only when the logger is chosen.
LOGGER_CHOICES = {"logger.wandb.mode": ("offline", "online", "disabled")}


# Keys that the chosen option of a group does not use, by (option key, option): set or not, they change nothing.
# Run identity (identity.py) leaves them out, so that e.g. every `augment=none` run is one configuration whatever
# its alpha, and validation rejects a value given for one of them on the command line.
IGNORED_BY_OPTION: dict[tuple[str, str], tuple[str, ...]] = {
    ("augment.name", "none"): ("augment.alpha", "augment.ratio", "augment.mix_after_blocks"),
    ("augment.name", "mixup"): ("augment.mix_after_blocks",),
    ("augment.name", "mixup_batch"): ("augment.mix_after_blocks",),
    ("augment.name", "cutmix"): ("augment.mix_after_blocks",),
    ("model.name", "preact_resnet18"): ("model.hidden",),
    ("optimizer.name", "adam"): ("optimizer.momentum", "optimizer.nesterov"),
    ("optimizer.schedule", "none"): ("optimizer.milestones", "optimizer.gamma"),
    ("optimizer.schedule", "cosine"): ("optimizer.milestones", "optimizer.gamma"),
    ("data.name", "cifar10"): ("data.image_size", "data.num_train", "data.num_test", "data.num_classes",
                               "data.signal", "data.noise", "data.data_seed"),
    ("data.name", "svhn"): ("data.image_size", "data.num_train", "data.num_test", "data.num_classes",
                            "data.signal", "data.noise", "data.data_seed"),
    ("data.name", "image_folder"): ("data.num_train", "data.num_test", "data.num_classes", "data.signal",
                                    "data.noise", "data.data_seed", "data.download"),
    ("data.name", "synthetic"): ("data.root", "data.download", "data.cache_dir"),
}


def ignored_keys(flat: dict[str, Any]) -> set[str]:
    """The dotted keys of a flattened config that its chosen options ignore (see IGNORED_BY_OPTION)."""
    return {key for (option_key, option), keys in IGNORED_BY_OPTION.items() if flat.get(option_key) == option
            for key in keys}


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
    for key, allowed in CHOICES.items():
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
    from mixupexp.loggers import check_packages

    check_packages(cfg)


def register_configs() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)


register_configs()
