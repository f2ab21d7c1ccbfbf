"""One process per run directory: a lock file naming its owner (pid, host, the command's invocation, and when
that process started).

Two processes training into one directory would interleave checkpoints and results. A run takes `run.lock` in
its directory before it reads or writes anything there. The lock is created whole (written to a temporary file,
then hard-linked into place, which fails if it exists), so a reader never sees half of one. A lock left by a
process that died on this host is stale and taken over, and so is one whose pid now belongs to another process
(pids are reused: the lock records its process's start time and the boot it ran in, where /proc tells them); any
other existing lock is held, and the caller learns by whom: a job of the same command (a duplicate job of the
sweep) or another process (a clash).

Only one process may win a takeover, however the processes that found the same stale lock interleave: a taker
holds an exclusive flock on the stale lock file, checks under it that this file is still the one at `run.lock`
and still stale, renames its own lock over it, and re-reads `run.lock` to confirm that it holds its own token.
A second taker then finds the file replaced, or the new owner alive, and is refused. The kernel drops a flock
when its process dies, so no claim of a takeover can itself go stale.
"""

from __future__ import annotations

import fcntl
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

from mixupexp.config.schema import ConfigError
from mixupexp.records.files import raise_refused

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
    # `<boot id>:<start time in clock ticks>` of the process; None where /proc does not tell (and in old locks).
    process_start: Optional[str] = None

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


class LockError(ConfigError):
    """The lock's path holds something that no run writes (a directory): the run cannot be locked safely."""


def process_start(pid: int) -> Optional[str]:
    """What tells process `pid` from a later process with the same pid: its start time since boot (field 22 of
    /proc/<pid>/stat) and the boot's id; None where there is no /proc or no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name, in parentheses, may hold spaces
    return f"{boot}:{fields[19]}" if len(fields) > 19 else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_of(text: str) -> Optional[Holder]:
    try:
        data = json.loads(text)
        start = data.get("process_start")
        return Holder(int(data["pid"]), str(data["host"]), str(data["invocation"]), str(data["since"]),
                      str(start) if start is not None else None)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def read_holder(run_dir: Path) -> Optional[Holder]:
    """The lock's holder, or None where there is no lock (an unreadable lock counts as none)."""
    try:
        return _holder_of((Path(run_dir) / LOCK).read_text())
    except OSError:
        return None


def _token(path: Path) -> Optional[str]:
    """The token of the lock at `path`: what tells one taking of a lock from any other, even by the same pid."""
    try:
        return json.loads(path.read_text()).get("token")
    except (OSError, ValueError, AttributeError):
        return None


def _is_alive(holder: Holder) -> bool:
    if not _alive(holder.pid):
        return False
    if holder.process_start is None:
        return True  # a lock that does not say when its process started: its pid is all there is to check
    now = process_start(holder.pid)
    return now is None or now == holder.process_start


def _counts(holder: Optional[Holder]) -> bool:
    """Whether a lock's holder is (or may be) alive: on another host it cannot be checked, so it counts."""
    return holder is not None and (holder.host != socket.gethostname() or _is_alive(holder))


def live_holder(run_dir: Path) -> Optional[Holder]:
    """The holder of the lock if it is (or may be) alive."""
    holder = read_holder(run_dir)
    return holder if _counts(holder) else None


def check_lock_path(run_dir: Path) -> None:
    """LockError if the lock's path holds something other than a lock file (a directory): removing it there is
    the user's decision, not the run's."""
    path = Path(run_dir) / LOCK
    if path.is_dir() and not path.is_symlink():
        raise LockError(f"{path} is a directory, not a lock file; remove it (rmdir {path}) and run the command again")


def _write_own(path: Path, token: str) -> str:
    """A temporary file beside `path` holding this process's lock, whole; its name."""
    me = {"pid": os.getpid(), "host": socket.gethostname(), "invocation": invocation_id(),
          "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
          "process_start": process_start(os.getpid()), "token": token}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _create(path: Path, token: str) -> bool:
    """Create the lock file whole; False if one exists."""
    tmp = _write_own(path, token)
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def _take_over(path: Path, token: str) -> bool:
    """Replace the stale lock at `path` by this process's; False where another process changed it first (took
    it over, or is taking it over at this moment) or its holder turns out to be alive."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return False  # released or taken away meanwhile: creating it is tried again
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when `f` is closed, or its process dies
        except BlockingIOError:
            return False  # another process is taking this very file over
        try:
            current = os.stat(path)
        except FileNotFoundError:
            return False
        opened = os.fstat(f.fileno())
        if (current.st_dev, current.st_ino) != (opened.st_dev, opened.st_ino):
            return False  # replaced since it was opened: another process won the takeover
        if _counts(_holder_of(f.read().decode(errors="replace"))):
            return False
        tmp = _write_own(path, token)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    return _token(path) == token


def _release(path: Path, token: str) -> None:
    """Remove the lock if it is still this process's (never a lock that another process holds now)."""
    if _token(path) == token:
        path.unlink(missing_ok=True)


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir`'s lock for the block; RunLocked if a live process holds it."""
    path = Path(run_dir) / LOCK
    check_lock_path(run_dir)
    token = uuid.uuid4().hex
    try:
        for _ in range(3):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                if _create(path, token):
                    break
                holder = live_holder(run_dir)
                if holder is not None:
                    raise RunLocked(Path(run_dir), holder)
                check_lock_path(run_dir)
                if _take_over(path, token):  # stale: its process is gone (or the file was unreadable)
                    break
            except OSError as e:
                raise_refused(path, e)
        else:
            raise RunLocked(Path(run_dir), read_holder(run_dir) or Holder(-1, "?", "?", "?"))
    except BaseException:  # a signal right after the lock was linked or renamed into place: leave none behind
        _release(path, token)
        raise
    try:
        yield
    finally:
        _release(path, token)
