"""Atomic writes: a kill at any moment leaves either the old file or the new one, never half of one.

The new file is written under a temporary name, flushed to the disk (fsync) and only then renamed over the old
one, and the rename itself is flushed: after a power loss or a crash of the machine the file is still the old one
or the whole new one, not an empty or truncated file under the final name. A write that the system refuses (a
full disk, a read-only file system) raises `WriteError`, one line naming the file, the reason and what to do.
"""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

# The temporary files of _atomic_write: `.<name>.<8 characters of mkstemp>.tmp`.
TEMP_FILE = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp")
# What to do about the refusals a user can fix.
_ADVICE = {
    errno.ENOSPC: "free some space there, or choose another output directory, and run the command again",
    errno.EDQUOT: "free some of your quota, or choose another output directory, and run the command again",
    errno.EROFS: "choose an output directory on a writable file system (hydra.run.dir=DIR or hydra.sweep.dir=DIR)",
    errno.EACCES: "choose an output directory you may write to (hydra.run.dir=DIR or hydra.sweep.dir=DIR)",
    errno.EPERM: "choose an output directory you may write to (hydra.run.dir=DIR or hydra.sweep.dir=DIR)",
}


class WriteError(OSError):
    """The system refused to write a file: the message names it, the reason, and what to do."""

    def __init__(self, code: int, message: str, path: Path | str | None = None):
        super().__init__(code, message)
        self.path = path

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):  # rebuilt from its own arguments when a launcher's worker sends it back
        return type(self), (self.errno, self.strerror, self.path)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def _atomic_write(path: Path | str, write: Callable[[str], None]) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise_refused(path, e)
    os.close(fd)
    try:
        write(tmp)
        # mkstemp creates the file readable by its owner only; give it the mode a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise_refused(path, e)
        raise
    _fsync_directory(path.parent)


def raise_refused(path: Path, error: OSError):
    """Raise `error` as a WriteError naming `path` where the system refused the write (it has an errno)."""
    if isinstance(error, WriteError) or not error.errno:
        raise error
    reason = (error.strerror or str(error)).lower()
    advice = _ADVICE.get(error.errno, "check the file system and run the command again")
    raise WriteError(error.errno, f"cannot write {path}: {reason}; {advice}", str(path)) from error


def remove_stale_temp_files(directory: Path | str) -> list[Path]:
    """Remove the temporary files that writes into `directory` left when their process was killed (only files
    named as _atomic_write names them); return them. Call it only where no other process writes: a run removes
    them under its lock. A temporary file of the lock itself may belong to another process trying the lock at
    this moment (it lives for microseconds), so only one older than a minute is removed."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        match = TEMP_FILE.fullmatch(entry.name)
        if not match or not entry.is_file(follow_symlinks=False):
            continue
        if match["name"] == "run.lock" and now - entry.stat(follow_symlinks=False).st_mtime < 60:
            continue
        Path(entry.path).unlink(missing_ok=True)
        removed.append(Path(entry.path))
    return removed


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

    def save(tmp: str) -> None:
        # Through a Python file, whose OSError (ENOSPC, EROFS, ...) torch keeps as the context of its own
        # "[enforce fail at inline_container.cc] unexpected pos", the only words of its writer of a path.
        with open(tmp, "wb") as f:
            try:
                torch.save(obj, f)
            except RuntimeError as e:
                cause = _os_error_in(e)
                if cause is None:
                    raise
                raise cause from e

    _atomic_write(path, save)


def _os_error_in(error: BaseException) -> OSError | None:
    """The first OSError that `error` was raised from or while handling, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    _atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
