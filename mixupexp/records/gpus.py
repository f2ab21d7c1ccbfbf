"""One GPU per job on a machine with several: a lease per GPU, held while the job trains.

`hydra/launcher=parallel` starts one worker per GPU (`n_jobs` defaults to the GPU count there). Which worker runs
which job is the launcher's business, so a job does not pick its GPU by number: it leases the first GPU that no
other live job on this machine holds (a lock file per GPU, like a run directory's lock), trains on it, and gives
it back. A lease left by a process that died is taken over. If every GPU is leased (more workers than GPUs), the
job shares the GPU that the fewest live jobs hold.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator, Optional

from omegaconf import OmegaConf

from mixupexp.records.lock import RunLocked, live_holder, run_lock

SHARED_LEASES = "shared"


def lease_dir() -> Path:
    """Where this machine's GPU leases live (one folder per user, in the temporary directory)."""
    return Path(tempfile.gettempdir()) / f"mixupexp-gpu-leases-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


def _shared_count(folder: Path) -> int:
    """How many live jobs share this GPU beyond its lease holder."""
    shared = folder / SHARED_LEASES
    return sum(live_holder(entry) is not None for entry in shared.iterdir()) if shared.is_dir() else 0


@contextmanager
def gpu_lease(count: int, leases: Optional[Path] = None) -> Iterator[int]:
    """The index of the GPU this job may use, held for the block: the first of `count` GPUs that no other live
    job holds, else the one the fewest share."""
    leases = leases or lease_dir()
    with ExitStack() as stack:
        for index in range(count):
            try:
                stack.enter_context(run_lock(leases / f"gpu{index}"))
            except RunLocked:
                continue
            yield index
            return
        # Every GPU is leased: share the least used one, and count this job among its sharers.
        index = min(range(count), key=lambda i: (_shared_count(leases / f"gpu{i}"), i))
        stack.enter_context(run_lock(leases / f"gpu{index}" / SHARED_LEASES / str(os.getpid())))
        yield index


def parallel_jobs() -> int:
    """The default number of concurrent jobs of `hydra/launcher=parallel`: one per GPU where there are several;
    4 on one GPU (several runs of the default CNN share one GPU well); on a CPU one per core, each then pinned
    to its share of the cores (training/device.py), so that jobs x threads never exceeds the cores."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return count if count > 1 else 4


# `${mixupexp.parallel_jobs:}` is conf/hydra/launcher/parallel.yaml's n_jobs.
if not OmegaConf.has_resolver("mixupexp.parallel_jobs"):
    OmegaConf.register_new_resolver("mixupexp.parallel_jobs", parallel_jobs)
