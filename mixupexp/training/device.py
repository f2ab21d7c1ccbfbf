"""Where and how a run computes: the device (one GPU per job on a machine with several), the CPU threads, the versions recorded."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from contextlib import contextmanager
from typing import Iterator

import torch

from mixupexp.config.schema import ConfigError
from mixupexp.runs.gpus import gpu_lease


def available_cores() -> int:
    """The cores this process may run on (a cluster job or a container may get fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pin_threads(threads: int | None) -> int:
    """Set torch's CPU thread count for this run: launchers start workers with fewer threads (joblib's loky sets
    OMP_NUM_THREADS per worker), and a different count sums in a different order, so results would depend on
    the launcher. Returns the count set."""
    count = threads or available_cores()
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
