"""Resumable runs: the training state saved at the end of every epoch, and what a run directory already holds.

A checkpoint holds everything the rest of a run depends on: model, optimizer and LR-schedule state, the epoch, the
metrics so far and every random number generator (Python, NumPy, torch CPU and CUDA, the DataLoader's generator), so a
resumed run on the CPU ends with exactly the metrics of an uninterrupted one.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd
import torch

from mixupexp.config import ConfigError
from mixupexp.files import atomic_torch_save

CHECKPOINT = "checkpoint.pt"
RESULT = "result.json"
MODEL = "model.pt"  # the final weights, a plain state dict (torch.load(..., weights_only=True))
# Keys that do not change what a run computes, so a run may be resumed with other values.
VOLATILE_KEYS = ("trainer.progress", "trainer.resume", "trainer.keep_checkpoint", "trainer.save_model")


@dataclass
class PriorRun:
    result: Optional[dict]  # the result.json found, if any
    checkpoint: Optional[Path]  # a checkpoint to continue from, if any

    @property
    def finished(self) -> bool:
        return self.result is not None and self.result.get("status") == "ok"


def _comparable(config: dict) -> dict:
    # The loggers only record a run, so a run may be resumed with others.
    flat = pd.json_normalize({k: v for k, v in config.items() if k != "logger"}, sep=".").iloc[0].to_dict()
    return {k: v for k, v in flat.items() if k not in VOLATILE_KEYS}


def config_differences(ours: dict, theirs: dict) -> list[str]:
    a, b = _comparable(ours), _comparable(theirs)
    return [f"{k}: {a.get(k)!r} here vs {b.get(k)!r} there" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def find_prior_run(out_dir: Path, config: dict) -> PriorRun:
    """What `out_dir` holds of an earlier attempt at this run; ConfigError if it is another config's run."""
    result_path, checkpoint = out_dir / RESULT, out_dir / CHECKPOINT
    if not result_path.exists():
        return PriorRun(None, None)
    try:
        result = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        return PriorRun(None, None)  # unreadable (writes are atomic, so only edited by hand): start afresh
    differences = config_differences(config, result.get("config", {}))
    if differences:
        shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
        raise ConfigError(
            f"{out_dir} holds a run of another config ({shown}); choose another output directory "
            "or start afresh there with trainer.resume=false"
        )
    return PriorRun(result, checkpoint if checkpoint.exists() else None)


def rng_states(loader_generator: Optional[torch.Generator]) -> dict[str, Any]:
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore_rng_states(states: dict[str, Any], loader_generator: Optional[torch.Generator]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if loader_generator is not None and states["loader"] is not None:
        loader_generator.set_state(states["loader"])


def save_checkpoint(path: Path, *, model, optimizer, schedule, epoch: int, rows: list[dict], train_seconds: float,
                    loader_generator: Optional[torch.Generator]) -> None:
    atomic_torch_save(
        {
            "epoch": epoch,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict() if schedule is not None else None,
            "rows": rows,
            "train_seconds": train_seconds,
            "rng": rng_states(loader_generator),
        },
        path,
    )


def load_checkpoint(path: Path, *, model, optimizer, schedule, loader_generator: Optional[torch.Generator]) -> dict:
    """Restore model, optimizer, LR schedule and RNG states from `path`; return the checkpoint (epoch, rows,
    train_seconds)."""
    device = next(model.parameters()).device
    # The checkpoint holds RNG states and plain Python values besides tensors; it is a file this program wrote.
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if schedule is not None and state["schedule"] is not None:
        schedule.load_state_dict(state["schedule"])
    state["rng"]["torch"] = state["rng"]["torch"].cpu()
    state["rng"]["cuda"] = [s.cpu() for s in state["rng"]["cuda"]]
    if state["rng"]["loader"] is not None:
        state["rng"]["loader"] = state["rng"]["loader"].cpu()
    restore_rng_states(state["rng"], loader_generator)
    return state
