"""Structured configs: the schema every YAML file in conf/ is merged into.

Registering the dataclasses with Hydra's ConfigStore makes a wrong type or an unknown key fail at start-up,
before any data is loaded. Value checks that a type cannot express (alpha > 0, ratio in [0, 1], ...) live in
`validate`, which runs on the composed config before training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# Where decoded image folders are cached unless data.cache_dir says otherwise (`python -m mixupexp.cache`).
DEFAULT_CACHE_DIR = "~/.cache/mixupexp"


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
    cache_dir: str = DEFAULT_CACHE_DIR
    # image_folder: what tells that a cached folder's files are unchanged. `stat`: every file's path, class, size,
    # modification and change time and inode (the listing's cost); `content`: a hash of every file's bytes too, for
    # file systems whose change times cannot be trusted (docs/reliability.md gives the cost of each).
    cache_verify: str = "stat"
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
    # Images per forward pass of an evaluation. Measured on a 2-core CPU (python -m mixupexp.bench): 250 keeps a
    # batch's activations in cache and evaluated the CNN 1.5 times as fast as 1000 (docs/speed.md).
    eval_batch_size: int = 250
    # Measure the test split after every this many epochs, and always after the last one (1 = every epoch). Each
    # measurement is a forward pass over the whole test split, about a tenth of a CPU epoch of CIFAR-10. It does
    # not change training (not part of a run's identity); metrics.csv leaves the test columns of the skipped
    # epochs empty. The validation split, which a sweep selects by, is still measured every epoch.
    eval_every: int = 1
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


def register_configs() -> None:
    ConfigStore.instance().store(name="base_config", node=Config)


register_configs()
