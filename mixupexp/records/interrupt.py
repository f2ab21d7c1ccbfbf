"""Stopping a command: Ctrl-C (SIGINT) and SIGTERM (what SLURM, `timeout` and `kill` send) end it the same way.

The run in progress is marked `interrupted` (it resumes from its last checkpoint), its lock is released, and the
command prints one line with the command that resumes it. The exit status is the one a shell reports for a
process stopped by the signal (128 + its number): 130 for Ctrl-C, 143 for SIGTERM, so that a cluster launcher
can tell a preempted job from a failed one.
"""

from __future__ import annotations

import signal

EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130
EXIT_TERMINATED = 128 + signal.SIGTERM  # 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that every path that handles one handles both."""


def _terminate(signum, frame) -> None:
    # Once: a second SIGTERM while the first is handled (the run being marked interrupted) must not cut that short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def handle_sigterm() -> None:
    """Raise Terminated on SIGTERM in this process (where it can: only the main thread may set handlers)."""
    try:
        signal.signal(signal.SIGTERM, _terminate)
    except ValueError:
        pass


def exit_status(stop: KeyboardInterrupt) -> int:
    """The exit status of a command stopped by `stop`; further SIGTERMs are ignored: it is exiting."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
