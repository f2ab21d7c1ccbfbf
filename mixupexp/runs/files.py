"""Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one.

The new file is written under a temporary name, flushed to the disk (fsync) and only then renamed over the old
one, and the rename itself is flushed: after a power loss or a crash of the machine the file is still the old one
or the whole new one, not an empty or truncated file under the final name.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic_write(path: Path | str, write: Callable[[str], None]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates the file readable by its owner only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync(path: Path | str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not sync directories; the rename is then as durable as they make it
    finally:
        os.close(fd)


def atomic_write_text(path: Path | str, text: str) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path | str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_csv(path: Path | str, frame) -> None:
    """Write a pandas DataFrame as CSV, atomically."""
    _atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def atomic_torch_save(obj: Any, path: Path | str) -> None:
    import torch

    _atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
