"""What the run directories of a command line hold, checked before Hydra writes anything into them.

Hydra creates a job's directory and its log file before the job runs, so a command refused by the job itself has
already touched the directory it refuses. These checks run first, on the plan of the command line
(runs/command_plan.py): a directory that holds another config's run, a result.json that cannot be a run's
record, a lock path that is a directory, an output directory that cannot be written (a read-only file system, a
full disk) and, for a single run, a run that another live process trains. Each is one line; nothing is written.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Optional

from mixupexp.config.schema import ConfigError
from mixupexp.records.checkpoint import another_config
from mixupexp.records.files import WriteError
from mixupexp.records.identity import plain_config
from mixupexp.records.lock import RunLocked, check_lock_path, invocation_id, live_holder
from mixupexp.records.result import RESULT, read_result
from mixupexp.runs.command_plan import CommandPlan

# Less free space than this cannot hold a run's first files (its config, result.json and a checkpoint).
MIN_FREE_BYTES = 2**20


def _existing_ancestor(directory: Path) -> Optional[Path]:
    directory = Path(os.path.abspath(directory))
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            return candidate
    return None


def check_writable(directory: Path) -> None:
    """WriteError (one line) if nothing can be written under `directory`: its file system is read-only or full,
    or this user may not write there. It writes nothing to find out."""
    existing = _existing_ancestor(directory)
    if existing is None:
        return
    try:
        stats = os.statvfs(existing)
    except (OSError, AttributeError):  # AttributeError: no statvfs (Windows)
        return
    where = f"{directory}" if existing == Path(os.path.abspath(directory)) else f"{directory} (in {existing})"
    if stats.f_flag & os.ST_RDONLY:
        raise WriteError(errno.EROFS, f"cannot write {where}: read-only file system; choose an output directory on "
                         "a writable file system (hydra.run.dir=DIR or hydra.sweep.dir=DIR)", str(directory))
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(errno.EACCES, f"cannot write {where}: permission denied; choose an output directory you "
                         "may write to (hydra.run.dir=DIR or hydra.sweep.dir=DIR)", str(directory))
    free = stats.f_bavail * stats.f_frsize
    if free < MIN_FREE_BYTES:
        raise WriteError(errno.ENOSPC, f"cannot write {where}: no space left on device ({free} bytes free); free "
                         "some space there, or choose another output directory, and run the command again",
                         str(directory))


def check_run_directories(plan: CommandPlan) -> None:
    """Raise, before anything is written, what a job of `plan` would otherwise meet in its directory:
    ConfigError (another config's run; a damaged result.json, UnreadableResult; a lock path that is a directory,
    LockError), WriteError (the output directory cannot be written), RunLocked (a single run that another live
    command trains: a sweep goes on with its other jobs and reports the clash at its end)."""
    if plan.base_dir is not None:
        check_writable(plan.base_dir)
    for job in plan.distinct:
        if job.run_dir is None or not job.run_dir.is_dir():
            continue
        check_lock_path(job.run_dir)
        if job.cfg.trainer.resume:  # trainer.resume=false starts afresh over whatever is there, as asked
            result = read_result(job.run_dir / RESULT)
            error = another_config(job.run_dir, plain_config(job.cfg), result) if result is not None else None
            if error is not None:
                raise error
        if not plan.multirun:
            holder = live_holder(job.run_dir)
            if holder is not None and holder.invocation != invocation_id():
                raise RunLocked(job.run_dir, holder)


def check_directories(plan: CommandPlan) -> None:
    """Exit with one line if a run directory of the command cannot be used as it stands: status 1 for a single
    run that another command trains (as when the run itself finds it), 2 for the rest; HYDRA_FULL_ERROR=1 shows
    the traceback instead."""
    try:
        check_run_directories(plan)
    except (ConfigError, WriteError, RunLocked) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        clash = isinstance(e, RunLocked)
        print(f"error: {e}{'; run the command again once it has finished' if clash else ''}", file=sys.stderr)
        sys.exit(1 if clash else 2)
