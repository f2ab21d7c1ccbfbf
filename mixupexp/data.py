"""Data sets as uint8 tensors: CIFAR-10, SVHN, any image folder, or generated data.

Every source ends in the same `ImageData`: N×C×H×W uint8 images and int64 labels for a train and a test split,
and, with `data.val_size=N`, a validation split of N images held out of the training set.
Images stay uint8 until a batch is drawn (a quarter of the memory of float32, so CIFAR-10 fits on any GPU);
the model normalises them itself.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mixupexp.cache import cache_path, store as store_cache

log = logging.getLogger("mixupexp")


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


# Fixed streams for choosing images: the split and the subset are the same for every run, seed and configuration.
VALIDATION_SPLIT_SEED = 1
TRAIN_SUBSET_SEED = 0


def hold_out_validation(data: ImageData, val_size: int) -> ImageData:
    """Move a fixed random subset of `val_size` training images into the validation split (the training set
    keeps the rest); the subset depends on the training set only, never on a run's seed."""
    count = len(data.train_labels)
    if val_size >= count:
        raise DataError(f"data.val_size={val_size} leaves no training images (the training set has {count}); "
                        "choose a smaller data.val_size")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(VALIDATION_SPLIT_SEED))
    held_out, kept = order[:val_size].sort().values, order[val_size:].sort().values
    data.val_images, data.val_labels = data.train_images[held_out], data.train_labels[held_out]
    data.train_images, data.train_labels = data.train_images[kept], data.train_labels[kept]
    return data


def load_data(cfg) -> ImageData:
    """Load the data set named by `cfg` (the `data` config group), hold out `val_size` images for validation
    and apply `train_subset` to the training images that remain."""
    loaders = {
        "cifar10": _load_cifar10,
        "svhn": _load_svhn,
        "image_folder": _load_image_folder,
        "synthetic": make_synthetic,
    }
    data = loaders[cfg.name](cfg)
    if getattr(cfg, "val_size", None):
        data = hold_out_validation(data, cfg.val_size)
    if cfg.train_subset is not None and cfg.train_subset > len(data.train_labels):
        held_out = f" after the {cfg.val_size} validation images" if getattr(cfg, "val_size", None) else ""
        raise DataError(
            f"data.train_subset={cfg.train_subset} is larger than the training set of {cfg.name}{held_out} "
            f"({len(data.train_labels)} images); use at most {len(data.train_labels)}, or null for all"
        )
    if cfg.train_subset is not None and cfg.train_subset < len(data.train_labels):
        # A fixed random subset, the same for every run and seed, so that runs stay comparable.
        keep = torch.randperm(len(data.train_labels), generator=torch.Generator().manual_seed(TRAIN_SUBSET_SEED))
        keep = keep[: cfg.train_subset]
        keep, _ = keep.sort()
        data.train_images, data.train_labels = data.train_images[keep], data.train_labels[keep]
    return data


def check_available(cfg) -> None:
    """Raise DataError if the data set named by `cfg` cannot be had, without decoding it: an image folder is
    listed, CIFAR-10 and SVHN are found (or downloaded) and read, synthetic data always can be made."""
    if cfg.name == "image_folder":
        _list_image_folder(cfg)
    elif cfg.name in ("cifar10", "svhn"):
        {"cifar10": _load_cifar10, "svhn": _load_svhn}[cfg.name](cfg)


def check_batch_size(batch_size: int, data: ImageData) -> None:
    """A batch must be smaller than the training set: else every epoch is one step (or none) and the run
    quietly stays at chance accuracy."""
    if batch_size >= len(data.train_labels):
        raise DataError(
            f"trainer.batch_size={batch_size} is not smaller than the training set ({len(data.train_labels)} "
            f"images), so an epoch would be a single step; use a batch size below {len(data.train_labels)}"
        )


def _offline_hint(name: str, root: str) -> str:
    return (
        f"{name} is not in {root} and could not be downloaded; connect to the internet, or use "
        f"data=image_folder data.root=DIR (DIR/train/<class>/*, DIR/test/<class>/*) or data=synthetic"
    )


def _load_cifar10(cfg) -> ImageData:
    from torchvision.datasets import CIFAR10

    root = os.path.expanduser(cfg.root)
    try:
        train = CIFAR10(root, train=True, download=cfg.download)
        test = CIFAR10(root, train=False, download=cfg.download)
    except (OSError, RuntimeError) as e:  # URLError is an OSError; a missing set without download a RuntimeError
        raise DataError(f"{_offline_hint('CIFAR-10', root)} ({type(e).__name__}: {e})") from e

    def to_tensors(ds):
        images = torch.from_numpy(np.ascontiguousarray(ds.data.transpose(0, 3, 1, 2)))
        return images, torch.tensor(ds.targets, dtype=torch.int64)

    return ImageData(*to_tensors(train), *to_tensors(test), classes=list(train.classes))


def _load_svhn(cfg) -> ImageData:
    from torchvision.datasets import SVHN

    root = os.path.expanduser(cfg.root)
    try:
        train = SVHN(root, split="train", download=cfg.download)
        test = SVHN(root, split="test", download=cfg.download)
    except (OSError, RuntimeError) as e:
        raise DataError(f"{_offline_hint('SVHN', root)} ({type(e).__name__}: {e})") from e

    def to_tensors(ds):
        return torch.from_numpy(ds.data), torch.from_numpy(ds.labels.astype(np.int64))

    return ImageData(*to_tensors(train), *to_tensors(test), classes=[str(i) for i in range(10)])


# ---------------------------------------------------------------------------------------------- image folders


def _list_split(root: Path, split: str) -> tuple[list[str], list[tuple[str, int]]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    directory = root / split
    if not directory.is_dir():
        raise DataError(f"{root} has no {split}/ folder; an image folder needs {root}/train/<class>/ and {root}/test/<class>/")
    try:
        classes, class_to_idx = find_classes(str(directory))
        samples = make_dataset(str(directory), class_to_idx, extensions=IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise DataError(f"{directory} holds no images in class folders ({e})") from e
    return classes, samples


def _folder_fingerprint(root: Path, samples: list[tuple[str, int]], image_size) -> str:
    digest = hashlib.sha1(f"{root.resolve()}|{image_size}".encode())
    for path, label in samples:
        st = os.stat(path)
        digest.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


class DecodeProgress:
    """Progress of a long decode: a bar on a terminal, else a log line at every quarter (log files, sweeps)."""

    def __init__(self, total: int, name: str):
        self.total, self.name, self.done, self.started = total, name, 0, time.perf_counter()
        self.bar = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=name, unit="img", leave=False)
        else:
            log.info("%s: %d images", name, total)

    def advance(self) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update()
        elif self.done < self.total and self.done * 4 // self.total != (self.done - 1) * 4 // self.total:
            log.info("%s: %d/%d images (%.0fs)", self.name, self.done, self.total, time.perf_counter() - self.started)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
        if exc[0] is None:
            log.info("%s: %d images in %.1fs", self.name, self.total, time.perf_counter() - self.started)


# Pillow's modes of 16-bit (and 32-bit integer) grayscale, as 16-bit PNGs and TIFFs open.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit grayscale is scaled (65535 -> 255): Pillow's own conversion clips it at 255, which
    makes every pixel above 255 of 65535 white."""
    if image.mode in _WIDE_GRAY_MODES:
        pixels = np.asarray(image, dtype=np.float64) / 257.0
        image = Image.fromarray(pixels.round().clip(0, 255).astype(np.uint8), mode="L")
    return image.convert("RGB")


def _decode(path: str, image_size) -> torch.Tensor:
    try:
        with Image.open(path) as image:
            image = _to_rgb(image)
            if image_size is not None and image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
            pixels = np.asarray(image)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"cannot decode image {path}: {e}") from e
    return torch.from_numpy(pixels.transpose(2, 0, 1).copy())


def _size(shape: tuple[int, int, int]) -> str:
    return f"{shape[2]}×{shape[1]}"  # width × height, as image viewers say


def _decode_split(samples: list[tuple[str, int]], image_size, name: str = "images") -> tuple[torch.Tensor, torch.Tensor]:
    images = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool, \
            DecodeProgress(len(samples), f"decoding {name}") as progress:
        for image in pool.map(lambda s: _decode(s[0], image_size), samples, chunksize=256):
            images.append(image)
            progress.advance()
    shapes = Counter(tuple(im.shape) for im in images)
    if len(shapes) > 1:
        usual = shapes.most_common(1)[0][0]
        odd, odd_shape = next((path, tuple(im.shape)) for (path, _), im in zip(samples, images)
                              if tuple(im.shape) != usual)
        raise DataError(
            f"images differ in size: {odd} is {_size(odd_shape)} but {shapes[usual]} of {len(images)} are "
            f"{_size(usual)}; set data.image_size=N to resize them all to N×N"
        )
    return torch.stack(images), torch.tensor([label for _, label in samples], dtype=torch.int64)


def _list_image_folder(cfg) -> tuple[Path, list[str], list[tuple[str, int]], list[tuple[str, int]]]:
    """(root, classes, train samples, test samples) of an image folder; DataError if it cannot be used."""
    root = Path(os.path.expanduser(cfg.root))
    if not root.is_dir():
        raise DataError(f"data.root={cfg.root} does not exist; point it at a folder with train/ and test/")
    train_classes, train_samples = _list_split(root, "train")
    test_classes, test_samples = _list_split(root, "test")
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataError(
            f"{root}: train/ and test/ have different classes (only in train: {only_train}, only in test: {only_test})"
        )
    return root, train_classes, train_samples, test_samples


def _load_image_folder(cfg) -> ImageData:
    root, train_classes, train_samples, test_samples = _list_image_folder(cfg)

    cache = cache_path(cfg.cache_dir, root, cfg.image_size,
                       _folder_fingerprint(root, train_samples + test_samples, cfg.image_size))
    if cache.exists():
        try:
            saved = torch.load(cache, weights_only=True)
            log.info("decoded images of %s read from the cache %s", root, cache)
            return ImageData(**saved)
        except Exception:
            pass  # an unreadable cache is rebuilt below
    train_images, train_labels = _decode_split(train_samples, cfg.image_size, f"{root}/train")
    test_images, test_labels = _decode_split(test_samples, cfg.image_size, f"{root}/test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"{root}: train images are {tuple(train_images.shape[1:])} but test images {tuple(test_images.shape[1:])}; "
            "set data.image_size=N to resize both"
        )
    data = ImageData(train_images, train_labels, test_images, test_labels, classes=train_classes)
    try:
        removed = store_cache(vars(data), cache, root, cfg.image_size)
        log.info("decoded images cached in %s (%.0f MB; python -m mixupexp.cache lists or clears the caches)%s",
                 cache, cache.stat().st_size / 2**20,
                 f"; removed {len(removed)} superseded file(s) of this folder" if removed else "")
    except OSError as e:
        log.warning("decoded images not cached (%s): they are decoded again next time", e)
    return data


# ---------------------------------------------------------------------------------------------- synthetic


def make_synthetic(cfg) -> ImageData:
    """A small, deterministic, CIFAR-shaped data set with a learnable signal and no download.

    Each class has a smooth colour template (std `signal`); an image is its class template, shifted by a few
    pixels and scaled in contrast, plus Gaussian pixel noise (std `noise`), both in 0..255 units. The signal is
    weak against the noise, so that a few epochs reach a clearly-above-chance accuracy that is not 100 % and
    leaves room for a regulariser to matter. The data depend on `data_seed` only.
    """
    size = cfg.image_size or 32
    rng = np.random.default_rng(cfg.data_seed)
    coarse = rng.normal(0.0, 1.0, size=(cfg.num_classes, 3, 4, 4))
    templates = torch.nn.functional.interpolate(
        torch.from_numpy(coarse), size=(size, size), mode="bicubic", align_corners=False
    ).numpy()
    templates *= cfg.signal / templates.std()

    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = rng.integers(0, cfg.num_classes, size=n)
        contrast = rng.uniform(0.6, 1.4, size=(n, 1, 1, 1))
        shifts = rng.integers(-3, 4, size=(n, 2))
        images = np.empty((n, 3, size, size))
        for k in range(n):
            images[k] = np.roll(templates[labels[k]], shift=tuple(shifts[k]), axis=(1, 2))
        images = 128.0 + contrast * images + rng.normal(0.0, cfg.noise, size=images.shape)
        return torch.from_numpy(images.clip(0, 255).round().astype(np.uint8)), torch.from_numpy(labels)

    train = split(cfg.num_train)
    test = split(cfg.num_test)
    return ImageData(*train, *test, classes=[f"class_{c}" for c in range(cfg.num_classes)])
