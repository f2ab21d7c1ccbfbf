"""How a run stands (result.json's `status`) and how a job of a sweep ended.

`RunStatus` is a `str` enum: result.json holds the plain word (`"ok"`), old files read back as members, and
pandas compares the column with members directly.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    RUNNING = "running"  # being trained, or killed without a chance to say so: resumes from its checkpoint
    OK = "ok"  # finished: its result counts
    INTERRUPTED = "interrupted"  # stopped by Ctrl-C or SIGTERM: resumes from its checkpoint
    FAILED = "failed"
    DIVERGED = "diverged"  # a loss became NaN or infinite
    OUT_OF_MEMORY = "out_of_memory"

    def __str__(self) -> str:
        return self.value


# Stopped before finishing but resumable from the last checkpoint.
UNFINISHED = (RunStatus.INTERRUPTED, RunStatus.RUNNING)
# Ended by an error: a rerun starts afresh.
FAILURES = (RunStatus.FAILED, RunStatus.DIVERGED, RunStatus.OUT_OF_MEMORY)


class JobOutcome(str, Enum):
    """What one Hydra job of a command did (the sweep's end accounts for each)."""

    OK = "ok"  # trained, resumed, or found finished
    DUPLICATE = "duplicate"  # another job of this command trains the same run
    CLASH = "clash"  # another live command trains it
    REFUSED = "refused"  # bad input, or a directory holding another config's run
    LOST = "lost"  # its cluster job left the queue without a result (cancelled, a lost node)

    def __str__(self) -> str:
        return self.value
