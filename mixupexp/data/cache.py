"""The cache of decoded image folders (`data.cache_dir`, default ~/.cache/mixupexp), and
`python -m mixupexp.cache [--clear]` to list or remove it.

A cache file is named by its folder (path and image size) and by the folder's contents:
image_folder-<folder key>-<contents key>.pt, with a JSON note beside it naming the folder. When a folder's
contents change, the new cache replaces the superseded ones of the same folder instead of piling up copies.
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
from mixupexp.runs.files import atomic_torch_save, write_json

log = logging.getLogger("mixupexp")

PREFIX = "image_folder-"
DEFAULT_DIR = DEFAULT_CACHE_DIR


def folder_key(root: Path, image_size: Optional[int]) -> str:
    return hashlib.sha1(f"{Path(root).resolve()}|{image_size}".encode()).hexdigest()[:12]


def cache_path(cache_dir: str | Path, root: Path, image_size: Optional[int], contents_key: str) -> Path:
    return Path(os.path.expanduser(cache_dir)) / f"{PREFIX}{folder_key(root, image_size)}-{contents_key}.pt"


def _note(path: Path) -> Path:
    return path.with_suffix(".json")


def store(data: dict[str, Any], path: Path, root: Path, image_size: Optional[int]) -> list[Path]:
    """Write the decoded data to `path` with its note; remove the superseded caches of the same folder; return
    the removed files."""
    atomic_torch_save(data, path)
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


