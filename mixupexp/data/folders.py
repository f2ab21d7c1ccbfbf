"""`data=image_folder`: DIR/train/<class>/* and DIR/test/<class>/* decoded to uint8 tensors (in parallel, once: the decoded tensors are cached, data/cache.py)."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mixupexp.config.registry import register
from mixupexp.data.cache import cache_path
from mixupexp.data.cache import store as store_cache
from mixupexp.data.images import SYNTHETIC_ONLY, DataError, ImageData

log = logging.getLogger("mixupexp")

# Pillow's modes of 16-bit (and 32-bit integer) grayscale, as 16-bit PNGs and TIFFs open.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


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


def list_image_folder(cfg) -> tuple[Path, list[str], list[tuple[str, int]], list[tuple[str, int]]]:
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


@register("data", "image_folder", ignores=(*SYNTHETIC_ONLY, "data.download"))
def _load_image_folder(cfg) -> ImageData:
    """Any folder of class folders: DIR/train/<class>/*, DIR/test/<class>/*."""
    root, train_classes, train_samples, test_samples = list_image_folder(cfg)

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
