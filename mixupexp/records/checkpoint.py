"""Resumable runs: the training state saved at the end of every epoch, and what a run directory already holds.

A checkpoint holds everything the rest of a run depends on: model, optimizer and LR-schedule state, the epoch, the
metrics so far and every random number generator (Python, NumPy, torch CPU and CUDA, the DataLoader's generator), so a
resumed run on the CPU ends with exactly the metrics of an uninterrupted one. It holds only tensors and plain data and
is loaded with `weights_only=True`, so a file planted in a run directory cannot run code. It records a CRC-32 of
every value it holds (records/checksums.py), checked before any of it is used: bytes damaged inside a tensor record
leave a loadable file. One that cannot be read, is damaged, or whose state does not fit the run's model and
optimizer is set aside (renamed) and the run starts afresh.
"""

from __future__ import annotations

import copy
import os
import pickle
import random
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from mixupexp.config.schema import ConfigError
from mixupexp.records.checksums import checksums, mismatches
from mixupexp.records.files import atomic_torch_save
from mixupexp.records.identity import SEED, identity
from mixupexp.records.result import RESULT, read_result
from mixupexp.records.status import RunStatus

CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"  # the final weights, a plain state dict (torch.load(..., weights_only=True))
CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "schedule", "rows", "train_seconds", "rng", "checksum")


class CheckpointError(Exception):
    """A checkpoint that cannot be used: unreadable, truncated, or holding more than tensors and plain data."""


@dataclass
class PriorRun:
    result: Optional[dict]  # the result.json found, if any
    checkpoint: Optional[Path]  # a checkpoint to continue from, if any

    @property
    def finished(self) -> bool:
        return self.result is not None and self.result.get("status") == RunStatus.OK


def config_differences(ours: dict, theirs: dict) -> list[str]:
    """What makes two configs different runs: their identities (identity.py) and seeds, key by key."""
    a = {**identity(ours), SEED: ours.get(SEED)}
    b = {**identity(theirs), SEED: theirs.get(SEED)}
    keys = sorted(set(a) | set(b), key=lambda k: (not k.endswith(".name"), k))  # the options first: they explain the rest
    return [f"{k}: {a.get(k)!r} here vs {b.get(k)!r} there" for k in keys if a.get(k) != b.get(k)]


def another_config(out_dir: Path, config: dict, result: dict) -> Optional[ConfigError]:
    """The error for a directory whose result.json holds another config's run, or None if it holds this one's."""
    differences = config_differences(config, result["config"])
    if not differences:
        return None
    shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
    return ConfigError(
        f"{out_dir} holds a run of another config ({shown}); choose another output directory "
        "or start afresh there with trainer.resume=false"
    )


def find_prior_run(out_dir: Path, config: dict) -> PriorRun:
    """What `out_dir` holds of an earlier attempt at this run; ConfigError if it is another config's run, and
    UnreadableResult (a ConfigError) if its result.json cannot be a run's record: writes are atomic, so such a
    file was damaged or edited by hand, and starting over it would destroy whatever it was."""
    checkpoint = out_dir / CHECKPOINT
    result = read_result(out_dir / RESULT)
    if result is None:
        return PriorRun(None, None)
    error = another_config(out_dir, config, result)
    if error is not None:
        raise error
    return PriorRun(result, checkpoint if checkpoint.exists() else None)


def rng_states(loader_generator: Optional[torch.Generator]) -> dict[str, Any]:
    """Every generator's state as tensors and plain numbers, which a checkpoint loaded with weights_only holds."""
    python_version, python_state, python_gauss = random.getstate()
    _, numpy_keys, numpy_pos, numpy_has_gauss, numpy_gauss = np.random.get_state(legacy=True)
    return {
        "python": {"version": python_version, "state": torch.tensor(python_state, dtype=torch.int64),
                   "gauss_next": python_gauss},
        "numpy": {"keys": torch.from_numpy(numpy_keys.astype(np.int64)), "pos": int(numpy_pos),
                  "has_gauss": int(numpy_has_gauss), "cached_gaussian": float(numpy_gauss)},
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "loader": loader_generator.get_state() if loader_generator is not None else None,
    }


def restore_rng_states(states: dict[str, Any], loader_generator: Optional[torch.Generator]) -> None:
    python = states["python"]
    random.setstate((python["version"], tuple(python["state"].tolist()), python["gauss_next"]))
    numpy = states["numpy"]
    np.random.set_state(("MT19937", numpy["keys"].numpy().astype(np.uint32), numpy["pos"], numpy["has_gauss"],
                         numpy["cached_gaussian"]))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])
    if loader_generator is not None and states["loader"] is not None:
        loader_generator.set_state(states["loader"])


def save_checkpoint(path: Path, *, model, optimizer, schedule, epoch: int, rows: list[dict], train_seconds: float,
                    loader_generator: Optional[torch.Generator]) -> None:
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else None,
        "rows": rows,
        "train_seconds": train_seconds,
        "rng": rng_states(loader_generator),
    }
    atomic_torch_save({**state, "checksum": checksums(state)}, path)


def read_checkpoint(path: Path) -> dict:
    """The checkpoint in `path`, on the CPU, its checksums verified; CheckpointError (one line naming the file)
    if it cannot be read, is not a checkpoint of this program, or is damaged."""
    state = load_plain(path)
    missing = sorted(set(CHECKPOINT_KEYS) - set(state)) if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if missing:
        raise CheckpointError(f"{path} is not a checkpoint of this program (it lacks {', '.join(missing)})")
    damaged = mismatches({k: v for k, v in state.items() if k != "checksum"}, state["checksum"])
    if damaged:
        shown = ", ".join(damaged[:3]) + (f" and {len(damaged) - 3} more" if len(damaged) > 3 else "")
        raise CheckpointError(f"{path} is damaged: {shown} do not match the checksums written with it")
    return state


def load_plain(path: Path) -> Any:
    """What the torch file `path` holds, on the CPU; CheckpointError (one line naming the file) if it cannot be
    read.

    Only tensors and plain data are loaded (weights_only): a file that refers to anything else is refused
    before any of it runs, since unpickling arbitrary objects can execute code.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises loading with weights_only=False: that is what must never happen to a file
        # found in a run directory, so only the reason is kept.
        refused = re.search(r"GLOBAL (\S+)", str(e))
        if refused:
            raise CheckpointError(
                f"{path} is not a plain checkpoint (it refers to {refused.group(1).rstrip('.,;')}); refused as "
                "unsafe, since loading it could run code"
            ) from e
        raise CheckpointError(f"{path} cannot be read: {_unpickling_reason(e)}") from e
    except (OSError, RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(f"{path} cannot be read: {type(e).__name__}: {_first_line(e)}") from e
    return state


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [""])[0]


_ADVICE_WORDS = ("weights_only", "torch.load", "trusted source", "documentation", "PyTorch 2.6")


def _unpickling_reason(error: BaseException) -> str:
    # torch's message opens with paragraphs of advice; the reason is on the line naming the unpickler, else on
    # the first line that is not advice.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in lines:
        if "WeightsUnpickler error:" in line:
            return line.split("WeightsUnpickler error:", 1)[1].strip()
    reasons = [line for line in lines if not any(word in line for word in _ADVICE_WORDS)]
    return reasons[0] if reasons else "it holds more than tensors and plain data"


def load_checkpoint(path: Path, *, model, optimizer, schedule, loader_generator: Optional[torch.Generator]) -> dict:
    """Restore model, optimizer, LR schedule and RNG states from `path`; return the checkpoint (epoch, rows,
    train_seconds). Raises CheckpointError, having changed nothing, if the file cannot be read or its state does
    not fit (another model's weights, another optimizer's state): the run then starts as a fresh one would."""
    state = read_checkpoint(path)
    before = _states(model, optimizer, schedule, loader_generator)
    try:
        if not (isinstance(state["epoch"], int) and isinstance(state["rows"], list)
                and len(state["rows"]) == state["epoch"] >= 1):
            raise ValueError(f"it holds {len(state['rows'])} rows of metrics for epoch {state['epoch']}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if schedule is not None and state["schedule"] is not None:
            schedule.load_state_dict(state["schedule"])
        restore_rng_states(state["rng"], loader_generator)
    except Exception as e:  # whatever does not fit: load_state_dict copies what matches before it complains
        _restore_states(before, model, optimizer, schedule, loader_generator)
        raise CheckpointError(f"{path} does not fit this run ({type(e).__name__}: {_reason(e)})") from e
    return state


def _reason(error: BaseException) -> str:
    # "Error(s) in loading state_dict for SimpleCNN:" says nothing; the line after it says what differs.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        return f"{lines[0]} {lines[1]}"
    return lines[0] if lines else type(error).__name__


def _states(model, optimizer, schedule, loader_generator) -> dict[str, Any]:
    return {
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
        "schedule": copy.deepcopy(schedule.state_dict()) if schedule is not None else None,
        "rng": rng_states(loader_generator),
    }


def _restore_states(states: dict[str, Any], model, optimizer, schedule, loader_generator) -> None:
    model.load_state_dict(states["model"])
    optimizer.load_state_dict(states["optimizer"])
    if schedule is not None:
        schedule.load_state_dict(states["schedule"])
    restore_rng_states(states["rng"], loader_generator)


def set_aside(path: Path) -> Path:
    """Rename an unusable checkpoint to `<name>.corrupt-<UTC time>` (kept for a look, out of the way of the next
    run); return the new path."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{number}")
    os.replace(path, target)
    return target
