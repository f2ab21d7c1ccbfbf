"""The cache of decoded image folders (`data.cache_dir`, default ~/.cache/mixupexp), and
`python -m mixupexp.cache [--clear]` to list or remove it.

A cache file is named by its folder (path and image size) and by the folder's contents:
image_folder-<folder key>-<contents key>.pt, with a JSON note beside it naming the folder. When a folder's
contents change, the new cache replaces the superseded ones of the same folder instead of piling up copies.

A name is not proof: a file copied or renamed into place, or damaged on the disk, would be trained on as it is.
So a cache records what it was decoded from (the folder, the image size, and a fingerprint of every file's path,
class, size and modification time) and a CRC-32 of each of its tensors, and is used only when both still match;
otherwise the log says why and the folder is decoded again. The checks cost a listing of the folder, which the
cache's name needs anyway, and a CRC over the tensors (about 50 ms for CIFAR-10's 60 000 images; a CRC finds
damage, and the source record finds a file of another folder; neither is meant to stop a forgery).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from mixupexp.config.schema import DEFAULT_CACHE_DIR
from mixupexp.records.checksums import mismatches
from mixupexp.records.checksums import checksums as tree_checksums
from mixupexp.records.files import atomic_torch_save, write_json

log = logging.getLogger("mixupexp")

PREFIX = "image_folder-"
DEFAULT_DIR = DEFAULT_CACHE_DIR


def folder_key(root: Path, image_size: Optional[int]) -> str:
    return hashlib.sha1(f"{Path(root).resolve()}|{image_size}".encode()).hexdigest()[:12]


def cache_path(cache_dir: str | Path, root: Path, image_size: Optional[int], contents_key: str) -> Path:
    return Path(os.path.expanduser(cache_dir)) / f"{PREFIX}{folder_key(root, image_size)}-{contents_key}.pt"


def _note(path: Path) -> Path:
    return path.with_suffix(".json")


TENSORS = ("train_images", "train_labels", "test_images", "test_labels")


def checksums(data: dict[str, Any]) -> dict[str, int]:
    """A CRC-32 of each tensor's bytes."""
    return tree_checksums({name: data[name] for name in TENSORS})


def load(path: Path, source: dict[str, Any]) -> tuple[Optional[dict[str, Any]], str]:
    """(the cached data, "") if `path` holds the decoded images of `source`, else (None, why not)."""
    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or holding more than tensors
        return None, f"it cannot be read ({type(e).__name__})"
    if not isinstance(saved, dict) or not isinstance(saved.get("source"), dict) or "checksum" not in saved:
        return None, "it does not record what it was decoded from (an older cache)"
    recorded = saved.pop("source")
    if recorded != source:
        return None, (f"it was decoded from other files ({_describe(recorded)}; the folder now holds "
                      f"{_describe(source)})")
    stored = saved.pop("checksum")
    try:
        damaged = mismatches({name: saved[name] for name in TENSORS}, stored)
    except (KeyError, AttributeError, TypeError, RuntimeError) as e:
        return None, f"it does not hold the tensors of a cache ({type(e).__name__}: {e})"
    if damaged:
        return None, f"its {', '.join(damaged)} do not match their checksum (the file is damaged)"
    if len(saved["train_labels"]) != source["train"] or len(saved["test_labels"]) != source["test"]:
        return None, "it holds another number of images than it records"
    return saved, ""


def _describe(source: dict[str, Any]) -> str:
    return (f"{source.get('train')} train and {source.get('test')} test images of {source.get('folder')}, "
            f"image_size {source.get('image_size')}, fingerprint {str(source.get('fingerprint'))[:12]}")


def store(data: dict[str, Any], path: Path, root: Path, image_size: Optional[int],
          source: Optional[dict[str, Any]] = None) -> list[Path]:
    """Write the decoded data to `path` with what it was decoded from (`source`) and its checksums, and its
    note; remove the superseded caches of the same folder; return the removed files."""
    atomic_torch_save({**data, "source": source or {}, "checksum": checksums(data)}, path)
    write_json(_note(path), {
        "folder": str(Path(root).resolve()),
        "image_size": image_size,
        "images": {"train": len(data["train_labels"]), "test": len(data["test_labels"])},
        "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    same_folder = path.name[: len(PREFIX) + 12]
    removed = []
    for old in path.parent.glob(f"{same_folder}-*"):
        if old not in (path, _note(path)):
            old.unlink(missing_ok=True)
            removed.append(old)
    return removed


@dataclass
class CacheEntry:
    path: Path
    size: int  # bytes
    folder: Optional[str]  # None when the note is missing (a cache written before notes existed)
    image_size: Optional[int]


def list_caches(cache_dir: str | Path = DEFAULT_DIR) -> list[CacheEntry]:
    entries = []
    for path in sorted(Path(os.path.expanduser(cache_dir)).glob(f"{PREFIX}*.pt")):
        try:
            note = json.loads(_note(path).read_text())
        except (OSError, ValueError):
            note = {}
        entries.append(CacheEntry(path, path.stat().st_size, note.get("folder"), note.get("image_size")))
    return entries


def clear(cache_dir: str | Path = DEFAULT_DIR, folder: str | Path | None = None) -> list[CacheEntry]:
    """Remove every cache file (and note) in cache_dir, or only those of image folder `folder`; return what was
    removed."""
    entries = list_caches(cache_dir)
    if folder is not None:
        wanted = os.path.realpath(os.path.expanduser(str(folder)))
        entries = [e for e in entries if e.folder and os.path.realpath(e.folder) == wanted]
    for entry in entries:
        entry.path.unlink(missing_ok=True)
        _note(entry.path).unlink(missing_ok=True)
    return entries


