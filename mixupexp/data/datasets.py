"""Data sets as uint8 tensors: CIFAR-10, SVHN, any image folder, or generated data.

Every source ends in the same `ImageData`: N×C×H×W uint8 images and int64 labels for a train and a test split,
and, with `data.val_size=N`, a validation split of N images held out of the training set.
Images stay uint8 until a batch is drawn (a quarter of the memory of float32, so CIFAR-10 fits on any GPU);
the model normalises them itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

import mixupexp.data.synthetic  # noqa: F401  (registers data=synthetic)
import mixupexp.data.torchvision_sets  # noqa: F401  (registers data=cifar10, data=svhn)
from mixupexp.config.registry import registered
from mixupexp.data.folders import list_image_folder  # registers data=image_folder
from mixupexp.data.images import DataError, ImageData

log = logging.getLogger("mixupexp")


# Fixed streams for choosing images: the split and the subset are the same for every run, seed and configuration.
VALIDATION_SPLIT_SEED = 1
TRAIN_SUBSET_SEED = 0


def hold_out_validation(data: ImageData, val_size: int) -> ImageData:
    """Move a fixed random subset of `val_size` training images into the validation split (the training set
    keeps the rest); the subset depends on the training set only, never on a run's seed."""
    count = len(data.train_labels)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(VALIDATION_SPLIT_SEED))
    held_out, kept = order[:val_size].sort().values, order[val_size:].sort().values
    data.val_images, data.val_labels = data.train_images[held_out], data.train_labels[held_out]
    data.train_images, data.train_labels = data.train_images[kept], data.train_labels[kept]
    return data


def load_data(cfg) -> ImageData:
    """Load the data set named by `cfg` (the `data` config group), hold out `val_size` images for validation
    and apply `train_subset` to the training images that remain."""
    data = registered("data")[cfg.name].build(cfg)
    check_split_sizes(cfg, len(data.train_labels))
    if getattr(cfg, "val_size", None):
        data = hold_out_validation(data, cfg.val_size)
    if cfg.train_subset is not None and cfg.train_subset < len(data.train_labels):
        # A fixed random subset, the same for every run and seed, so that runs stay comparable.
        keep = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(TRAIN_SUBSET_SEED))
        keep = keep[: cfg.train_subset]
        keep, _ = keep.sort()
        data.train_images, data.train_labels = data.train_images[keep], data.train_labels[keep]
    return data


def check_split_sizes(cfg, train_images: int) -> None:
    """Raise DataError if `data.val_size` or `data.train_subset` ask for more of the `train_images` training
    images than there are."""
    val_size = getattr(cfg, "val_size", None) or 0
    if val_size >= train_images:
        raise DataError(f"data.val_size={val_size} leaves no training images (the training set has "
                        f"{train_images}); choose a smaller data.val_size")
    left = train_images - val_size
    if cfg.train_subset is not None and cfg.train_subset > left:
        held_out = f" after the {val_size} validation images" if val_size else ""
        raise DataError(f"data.train_subset={cfg.train_subset} is larger than the training set of {cfg.name}"
                        f"{held_out} ({left} images); use at most {left}, or null for all")


@dataclass
class Available:
    """What a check of a data set tells before any run: the training images a run gets (after the validation
    split and train_subset) and, where they were decoded, the images' (height, width)."""

    train_images: int
    image_size: Optional[tuple[int, int]] = None


def check_available(cfg, decode: bool = False) -> Available:
    """Raise DataError if the data set named by `cfg` cannot be had, would not fit in memory, or if its splits
    ask for more training images than it has: an image folder is listed (and with `decode`, decoded and cached,
    so that an unreadable image or images of different sizes are found here), CIFAR-10 and SVHN are found (or
    downloaded) and read, synthetic data are counted from their config."""
    size = None
    if cfg.name == "image_folder":
        _, _, train, test = list_image_folder(cfg)
        check_memory(cfg, len(train), len(test), cfg.image_size)
        if decode:
            data = registered("data")[cfg.name].build(cfg)
            size = tuple(data.train_images.shape[2:])
            del data  # the run reads it again, from the cache
        train_images = len(train)
    elif cfg.name == "synthetic":
        check_memory(cfg, cfg.num_train, cfg.num_test, cfg.image_size or 32)
        train_images = cfg.num_train
    else:
        train_images = len(registered("data")[cfg.name].build(cfg).train_labels)
    check_split_sizes(cfg, train_images)
    left = train_images - (getattr(cfg, "val_size", None) or 0)
    return Available(min(left, cfg.train_subset) if cfg.train_subset is not None else left, size)


def check_memory(cfg, num_train: int, num_test: int, side: Optional[int]) -> None:
    """DataError, naming the keys, where loading the images would take more memory than is available: the
    allocator's own error names neither the key nor the data, and comes after the run has started."""
    free = _available_memory()
    if side is None or free is None:
        return
    values = (num_train + num_test) * 3 * side * side
    # At the peak of loading: synthetic data are drawn in float64, the images and their noise, split by split;
    # decoded images are held one by one and once more stacked.
    peak = values + 16 * 3 * side * side * max(num_train, num_test) if cfg.name == "synthetic" else 2 * values
    if peak <= free:
        return
    given = (f"data.num_train={num_train}, data.num_test={num_test}, data.image_size={side}"
             if cfg.name == "synthetic" else f"data.image_size={side} for {num_train + num_test} images")
    fewer = "data.num_train, data.num_test or data.image_size" if cfg.name == "synthetic" else "data.image_size"
    raise DataError(f"{given} would need about {_gib(peak)} of memory to load the images, and {_gib(free)} is "
                    f"available; lower {fewer}")


def _available_memory() -> Optional[int]:
    """Bytes this process may still allocate: the system's available memory (/proc/meminfo), or less where a
    cgroup (a container, a SLURM job) limits it; None where neither tells."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    cgroup = Path("/sys/fs/cgroup")
    try:
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return min(limits) if limits else None


def _gib(count: int) -> str:
    return f"{count / 2**30:,.1f} GiB"


def check_batch_size(batch_size: int, train_images: int) -> None:
    """A batch must be smaller than the training set: else every epoch is one step (or none) and the run
    quietly stays at chance accuracy."""
    if batch_size >= train_images:
        raise DataError(
            f"trainer.batch_size={batch_size} is not smaller than the training set ({train_images} "
            f"images), so an epoch would be a single step; use a batch size below {train_images}"
        )


# ---------------------------------------------------------------------------------------------- image folders


# ---------------------------------------------------------------------------------------------- synthetic


