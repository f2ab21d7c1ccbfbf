"""Where and how a run computes: the device (one GPU per job on a machine with several), the CPU threads, the versions recorded."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from contextlib import contextmanager
from typing import Iterator

import torch

from mixupexp.config.schema import ConfigError
from mixupexp.records.gpus import gpu_lease


def available_cores() -> int:
    """The cores this process may run on (a cluster job or a container may get fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def jobs_on_this_machine() -> int:
    """How many jobs of this command train at once on this machine: `hydra/launcher=parallel`'s n_jobs (the joblib
    launcher; -1 means one per core, as in joblib), else 1."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return 1
    launcher = HydraConfig.get().get("launcher") or {}
    if "joblib" not in str(launcher.get("_target_", "")):
        return 1
    n_jobs = int(launcher.get("n_jobs") or 1)
    return available_cores() if n_jobs < 0 else max(n_jobs, 1)


def pin_threads(threads: int | None) -> int:
    """Set torch's CPU thread count for this run and return it: `threads`, or by default this job's share of the
    cores (all of them for a job alone; cores // n_jobs for each of n_jobs parallel jobs, so that they never
    oversubscribe the cores). Pinned because launchers start workers with other counts (joblib's loky sets
    OMP_NUM_THREADS per worker), and the count is recorded in result.json since it changes the order of
    floating-point sums."""
    count = threads or max(available_cores() // jobs_on_this_machine(), 1)
    torch.set_num_threads(count)
    return count


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA GPU is available; use trainer.device=auto or cpu")
    return torch.device(name)


@contextmanager
def training_device(name: str) -> Iterator[torch.device]:
    """The device a job trains on, for the block: on a machine with several GPUs, one that no other live job of
    this machine holds (gpus.py), so that parallel workers spread over the GPUs instead of sharing cuda:0."""
    device = pick_device(name)
    count = torch.cuda.device_count() if device.type == "cuda" and device.index is None else 0
    if count < 2:
        yield device
        return
    with gpu_lease(count) as index:
        torch.cuda.set_device(index)
        yield torch.device("cuda", index)


def versions() -> dict:
    # Read from the package metadata: importing torchvision loads torch._dynamo (about 0.3 s after torch, and
    # seconds where nothing else loads it, as in evaluate), and a run on generated data never needs it.
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": importlib.metadata.version("torchvision")}
