"""`python tests/inject.py ARGS`: `python -m mixupexp.train ARGS` with one fault at an exact write.

MIXUPEXP_FAULT=`<file name>:<n>:<when>:<what>` picks the n-th atomic write (records/files.py) of a file of that name
in this process; `when` is `during` (the temporary file holds part of the new content, nothing is renamed yet) or
`after` (the file is in place); `what` is an errno name (ENOSPC, EROFS, ...: the write fails with that OSError) or
a signal name (SIGTERM, SIGINT, SIGKILL: the process sends it to itself, as `timeout`, SLURM or `kill -9` would).
The fault comes at that write every time, with no waiting for the right moment.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import mixupexp.records.files as files


def install(spec: str) -> None:
    name, nth, when, what = spec.split(":")
    real, seen = files._atomic_write, [0]

    def fault(tmp: str | None = None) -> None:
        if what.startswith("SIG"):
            os.kill(os.getpid(), getattr(signal, what))
            return
        code = getattr(errno, what)
        raise OSError(code, os.strerror(code), tmp)

    def faulty(path, write):
        if Path(path).name != name:
            return real(path, write)
        seen[0] += 1
        if seen[0] != int(nth):
            return real(path, write)
        if when == "after":
            real(path, write)
            return fault()

        def partial(tmp: str) -> None:
            Path(tmp).write_bytes(b"part of the new content")
            fault(tmp)

        return real(path, partial)

    files._atomic_write = faulty


if __name__ == "__main__":
    install(os.environ["MIXUPEXP_FAULT"])
    from mixupexp.train import main

    main()
