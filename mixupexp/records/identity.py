"""Run identity: what a run is, as opposed to how it was started or logged.

A run is its resolved config reduced to what changes training: settings that only change logging, progress
display, resuming, checkpoint keeping or what is measured after training are dropped, and so are the keys that
the chosen options ignore or read only to find their data (`config/options.py`: α and ratio for `augment=none`, the block list outside
manifold mixup, ...), and keys left at null. Two jobs with the same identity and seed train the same run, so:

- a sweep keeps each run in a directory named by its identity and seed (`run_name`), not by its position in the
  sweep: a sweep extended by a seed or an α finds its finished runs where it left them, and duplicate jobs of one
  sweep (`augment=none,mixup augment.alpha=0.1,0.4`) land in one directory and train once;
- a summary counts each (identity, seed) once, whatever directories it reads.

`identity` is readable (a flat dict of dotted keys); `identity_hash` is a short stable digest of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import typing
from functools import cache
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from mixupexp.config.options import ignored_keys, locating_keys
from mixupexp.config.schema import Config

# Settings that do not change what a run computes: how it is shown, logged, resumed, kept or evaluated afterwards,
# and the CPU thread count, which changes only the order of floating-point sums (result.json records it), so that
# runs of a parallel sweep (a share of the cores each) and of a serial one (every core) are the same runs.
NOT_TRAINING_KEYS = (
    "trainer.progress", "trainer.resume", "trainer.keep_checkpoint", "trainer.save_model", "trainer.eval_batch_size",
    "trainer.eval_every", "trainer.cuda_graph", "trainer.threads", "data.cache_dir", "data.cache_verify",
    "data.download",
)
NOT_TRAINING_PREFIXES = ("eval.", "logger.", "logger", "hydra.")
SEED = "seed"
DATA_ROOT = "data.root"
HASH_LENGTH = 10


def plain_config(cfg: Any) -> dict:
    """A composed config (DictConfig, with or without the `hydra` node) or a result.json's `config` as a plain dict."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return {key: (OmegaConf.to_container(cfg[key], resolve=True) if isinstance(cfg[key], (DictConfig, ListConfig))
                      else cfg[key])
                for key in cfg if key != "hydra"}
    return dict(cfg)


def flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """{'augment': {'alpha': 0.2}} -> {'augment.alpha': 0.2}; lists stay values."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@cache
def schema_types() -> dict[str, type]:
    """The declared type of each dotted config key (`optimizer.lr` -> float; of the elements for a list, of X for
    an Optional[X]), from the structured config."""
    types: dict[str, type] = {}

    def visit(schema: type, prefix: str) -> None:
        for name, declared in typing.get_type_hints(schema).items():
            while typing.get_origin(declared) in (typing.Union, list, tuple):
                declared = next(a for a in typing.get_args(declared) if a is not type(None))
            if dataclasses.is_dataclass(declared):
                visit(declared, f"{prefix}{name}.")
            elif isinstance(declared, type):
                types[f"{prefix}{name}"] = declared

    visit(Config, "")
    return types


def _number(value: Any, declared: type | None) -> Any:
    """One spelling of each number: a config typed by the schema holds floats as floats (1.0) and ints as ints,
    but an override or an older result.json can hold `alpha: 1` for `alpha: 1.0`. A number is written as the
    schema's type where that keeps its value; a key the schema does not know holds its whole numbers as ints.
    Bools are no numbers here: True stays apart from 1."""
    if isinstance(value, (list, tuple)):
        return [_number(v, declared) for v in value]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return value
    if declared is float and isinstance(value, int) and float(value) == value:
        return float(value)
    if declared is not float and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _is_training_key(key: str) -> bool:
    return key not in NOT_TRAINING_KEYS and not key.startswith(NOT_TRAINING_PREFIXES) and key != SEED


def identity(cfg: Any) -> dict[str, Any]:
    """The run's identity: its flattened config without the seed, the settings that do not change training, the
    keys its options ignore and the keys left at null (so that a key added later at null changes no identity);
    numbers spelled one way (1 and 1.0 are one value; see _number)."""
    flat = flatten(plain_config(cfg))
    left_out = ignored_keys(flat) | locating_keys(flat)
    types = schema_types()
    # In the config's order (model, data, augment, ...): summaries show their columns that way.
    return {k: _spelled_once(k, _number(v, types.get(k))) for k, v in flat.items()
            if _is_training_key(k) and k not in left_out and v is not None}


def _spelled_once(key: str, value: Any) -> Any:
    """A folder written several ways (`/data/c10`, `/data/c10/`, `../data/c10`, `~/c10`) is one folder: its
    resolved absolute path, as seen from the directory the command runs in."""
    if key == DATA_ROOT and isinstance(value, str):
        return os.path.realpath(os.path.expanduser(value))
    return value


def identity_hash(ident: dict[str, Any]) -> str:
    """A short digest of an identity, stable across processes, machines and Python versions."""
    text = json.dumps(ident, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def run_name(cfg: Any) -> str:
    """The directory name of a run: method, seed and identity hash, e.g. `mixup_seed0_3f9c2a1b0d`."""
    config = plain_config(cfg)
    method = config.get("augment", {}).get("name", "run")
    return f"{method}_seed{config.get(SEED)}_{identity_hash(identity(config))}"


def _run_name_resolver(*, _root_: DictConfig) -> str:
    return run_name(_root_)


# `${mixupexp.run_name:}` in conf/config.yaml names run directories (hydra.run.dir, hydra.sweep.subdir). Hydra
# resolves them in whichever process runs the job; every such process imports this module through train.py.
if not OmegaConf.has_resolver("mixupexp.run_name"):
    OmegaConf.register_new_resolver("mixupexp.run_name", _run_name_resolver)
