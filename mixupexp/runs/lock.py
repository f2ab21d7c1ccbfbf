"""One process per run directory: a lock file naming its owner (pid, host, the command's invocation).

Two processes training into one directory would interleave checkpoints and results. A run takes `run.lock` in
its directory before it reads or writes anything there. The lock is created whole (written to a temporary file,
then hard-linked into place, which fails if it exists), so a reader never sees half of one. A lock left by a
process that died on this host is stale and taken over; any other existing lock is held, and the caller learns by
whom: a job of the same command (a duplicate job of the sweep) or another process (a clash).
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Optional

LOCK = "run.lock"
# Set by `python -m mixupexp.train` for every job it starts (launcher workers inherit it): jobs of one command
# share it, so a job can tell a duplicate of its own sweep from another command training the same run.
INVOCATION_ENV = "MIXUPEXP_INVOCATION"


def invocation_id() -> str:
    """This command's invocation id (set once, inherited by the launcher's workers)."""
    if INVOCATION_ENV not in os.environ:
        os.environ[INVOCATION_ENV] = uuid.uuid4().hex[:12]
    return os.environ[INVOCATION_ENV]


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    invocation: str
    since: str

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} since {self.since}"


class RunLocked(RuntimeError):
    """Another live process holds the run directory's lock."""

    def __init__(self, run_dir: Path, holder: Holder):
        self.run_dir, self.holder = run_dir, holder
        super().__init__(f"{run_dir} is being trained by {holder.describe()}")

    @property
    def same_invocation(self) -> bool:
        return self.holder.invocation == invocation_id()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_holder(run_dir: Path) -> Optional[Holder]:
    """The lock's holder, or None where there is no lock (an unreadable lock counts as none)."""
    try:
        data = json.loads((Path(run_dir) / LOCK).read_text())
        return Holder(int(data["pid"]), str(data["host"]), str(data["invocation"]), str(data["since"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def live_holder(run_dir: Path) -> Optional[Holder]:
    """The holder of the lock if it is (or may be) alive: on another host it cannot be checked, so it counts."""
    holder = read_holder(run_dir)
    if holder is None or (holder.host == socket.gethostname() and not _alive(holder.pid)):
        return None
    return holder


def _create(path: Path) -> bool:
    """Create the lock file whole; False if one exists."""
    me = {"pid": os.getpid(), "host": socket.gethostname(), "invocation": invocation_id(),
          "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block; RunLocked if a live process holds it."""
    path = Path(run_dir) / LOCK
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        if _create(path):
            break
        holder = live_holder(run_dir)
        if holder is not None:
            raise RunLocked(Path(run_dir), holder)
        path.unlink(missing_ok=True)  # stale: its process is gone (or the file was unreadable)
    else:
        raise RunLocked(Path(run_dir), read_holder(run_dir) or Holder(-1, "?", "?", "?"))
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
