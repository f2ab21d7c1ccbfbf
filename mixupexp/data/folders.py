"""`data=image_folder`: DIR/train/<class>/* and DIR/test/<class>/* decoded to uint8 tensors (in parallel, once: the decoded tensors are cached, data/cache.py).

The folder is read as torchvision's ImageFolder reads it (the same classes, images and order), except where that
misreads a folder: hidden files and folders (`.ipynb_checkpoints`, `.DS_Store`) are not classes or images, links to
folders below a class folder are not followed (a link back up, `train/a/loop -> ..`, would repeat every image
without end), a broken link is named instead of failing later, and a split needs at least two classes.
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

from mixupexp.config.registry import register
from mixupexp.data.cache import cache_path
from mixupexp.data.cache import load as load_cache
from mixupexp.data.cache import store as store_cache
from mixupexp.data.images import SYNTHETIC_ONLY, DataError, ImageData

log = logging.getLogger("mixupexp")

# Pillow's modes of 16-bit (and 32-bit integer) grayscale, as 16-bit PNGs and TIFFs open.
_WIDE_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


# torchvision's ImageFolder extensions (compared in lower case), without importing torchvision for them.
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


@dataclass
class SplitListing:
    classes: list[str]
    samples: list[tuple[str, int]]  # (path, class index), in ImageFolder's order
    skipped_links: list[str]  # links to folders inside class folders, not followed


def _hidden(name: str) -> bool:
    return name.startswith(".")


def _walk_class(top: str, skipped_links: list[str]) -> list[tuple[str, list[str]]]:
    """(folder, image file names) for `top` and every folder below it, links to folders not followed."""
    found, pending = [], [top]
    while pending:
        folder = pending.pop()
        names = []
        with os.scandir(folder) as entries:
            for entry in entries:
                if _hidden(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_symlink() and entry.is_dir():
                    skipped_links.append(entry.path)
                elif entry.name.lower().endswith(IMG_EXTENSIONS):
                    if entry.is_symlink() and not os.path.exists(entry.path):
                        raise DataError(f"{entry.path} is a broken link (to {os.readlink(entry.path)}); remove it or "
                                        "restore the file it points to")
                    if entry.is_file():
                        names.append(entry.name)
        found.append((folder, names))
    return found


def _list_split(root: Path, split: str) -> SplitListing:
    directory = root / split
    if not directory.is_dir():
        raise DataError(f"{root} has no {split}/ folder; an image folder needs {root}/train/<class>/ and {root}/test/<class>/")
    with os.scandir(directory) as entries:
        classes = sorted(e.name for e in entries if not _hidden(e.name) and e.is_dir())
    if not classes:
        raise DataError(f"{directory} holds no images in class folders (no class folder in it)")
    if len(classes) < 2:
        raise DataError(f"{directory} has a single class folder ({classes[0]}): a classifier needs at least 2 classes; "
                        "add a folder per class")
    samples, skipped, empty = [], [], []
    for index, name in enumerate(classes):
        before = len(samples)
        # Sorted as ImageFolder sorts os.walk: by folder path, then file name.
        for folder, names in sorted(_walk_class(os.path.join(directory, name), skipped)):
            samples += [(os.path.join(folder, file), index) for file in sorted(names)]
        if len(samples) == before:
            empty.append(name)
    if empty:
        raise DataError(f"{directory} holds no images in class folders ({', '.join(empty)}: no "
                        f"{', '.join(IMG_EXTENSIONS)} file in it)")
    return SplitListing(classes, samples, skipped)


def _folder_fingerprint(root: Path, samples: list[tuple[str, int]], image_size, verify: str = "stat") -> str:
    """What a cache of the folder must match. The change time and inode are there because `cp -p`, `rsync -t` and
    `tar x` keep a replaced file's size and modification time, and a swap of two files between classes keeps
    both: no program can set a change time, and a rename or a write updates it. With verify=content, a hash
    of every file's bytes too, for file systems that do not keep change times."""
    digest = hashlib.sha1(f"{root.resolve()}|{image_size}|{verify}".encode())
    for path, label in samples:
        st = os.stat(path)
        digest.update(f"{path}|{label}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{st.st_ino}\n".encode())
        if verify == "content":
            with open(path, "rb") as f:
                digest.update(hashlib.sha1(f.read()).digest())
    return digest.hexdigest()


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
        # PIL's own message often names the file again: the line names it once.
        reason = str(e).replace(f" '{path}'", "").replace(str(path), "the file")
        raise DataError(f"cannot decode image {path}: {reason}") from e
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
    root, train, test = _list_folder(cfg)
    return root, train.classes, train.samples, test.samples


def _list_folder(cfg) -> tuple[Path, SplitListing, SplitListing]:
    root = Path(os.path.expanduser(cfg.root))
    if not root.is_dir():
        raise DataError(f"data.root={cfg.root} does not exist; point it at a folder with train/ and test/")
    train, test = _list_split(root, "train"), _list_split(root, "test")
    train_classes, test_classes = train.classes, test.classes
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise DataError(
            f"{root}: train/ and test/ have different classes (only in train: {only_train}, only in test: {only_test})"
        )
    return root, train, test


@register("data", "image_folder", ignores=(*SYNTHETIC_ONLY, "data.download"))
def _load_image_folder(cfg) -> ImageData:
    """Any folder of class folders: DIR/train/<class>/*, DIR/test/<class>/*."""
    root, train, test = _list_folder(cfg)
    train_classes, train_samples, test_samples = train.classes, train.samples, test.samples
    skipped = train.skipped_links + test.skipped_links
    if skipped:
        log.warning("%s: %d link(s) to folders inside class folders not followed (e.g. %s -> %s): a link may lead "
                    "back up and repeat images; put the images themselves (or links to them) in the class folder",
                    root, len(skipped), skipped[0], os.readlink(skipped[0]))
    fingerprint = _folder_fingerprint(root, train_samples + test_samples, cfg.image_size, cfg.cache_verify)
    source = {"folder": str(root.resolve()), "image_size": cfg.image_size, "fingerprint": fingerprint,
              "train": len(train_samples), "test": len(test_samples)}
    cache = cache_path(cfg.cache_dir, root, cfg.image_size, fingerprint[:20])
    if cache.exists():
        saved, why_not = load_cache(cache, source)
        if saved is not None:
            log.info("decoded images of %s read from the cache %s", root, cache)
            return ImageData(**saved)
        log.warning("the cache %s is not used: %s; decoding the images of %s again", cache, why_not, root)
    train_images, train_labels = _decode_split(train_samples, cfg.image_size, f"{root}/train")
    test_images, test_labels = _decode_split(test_samples, cfg.image_size, f"{root}/test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DataError(
            f"{root}: train images are {tuple(train_images.shape[1:])} but test images {tuple(test_images.shape[1:])}; "
            "set data.image_size=N to resize both"
        )
    data = ImageData(train_images, train_labels, test_images, test_labels, classes=train_classes)
    try:
        removed = store_cache(vars(data), cache, root, cfg.image_size, source)
        log.info("decoded images cached in %s (%.0f MB; python -m mixupexp.cache lists or clears the caches)%s",
                 cache, cache.stat().st_size / 2**20,
                 f"; removed {len(removed)} superseded file(s) of this folder" if removed else "")
    except OSError as e:
        log.warning("decoded images not cached (%s): they are decoded again next time", e)
    return data
