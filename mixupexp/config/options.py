"""Every option a config accepts, in one place: the options of the config groups (registered with their builders,
config/registry.py) and the choices of plain keys, with the keys each choice ignores.

Importing this module imports every stage, so that the registry is complete before anything reads it.
"""

from __future__ import annotations

from typing import Any

import mixupexp.augment.methods  # noqa: F401  (registers augment=...)
import mixupexp.data.datasets  # noqa: F401  (data=...)
import mixupexp.models.networks  # noqa: F401  (model=...)
import mixupexp.training.optim  # noqa: F401  (optimizer=...)
from mixupexp.config.registry import GROUPS, Option, registered

# Plain keys with a fixed set of values (not config groups), and the keys that a value makes unused.
KEY_CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer.schedule": ("none", "step", "cosine"),
    "trainer.device": ("auto", "cpu", "cuda"),
    "trainer.loader": ("auto", "device", "dataloader"),
    "trainer.precision": ("auto", "fp32", "bf16"),
    "trainer.cuda_graph": ("auto", "on", "off"),
    "trainer.progress": ("auto", "on", "off"),
}
IGNORED_BY_KEY_VALUE: dict[tuple[str, str], tuple[str, ...]] = {
    ("optimizer.schedule", "none"): ("optimizer.milestones", "optimizer.gamma"),
    ("optimizer.schedule", "cosine"): ("optimizer.milestones", "optimizer.gamma"),
}


def option(group: str, name: str) -> Option:
    """The registered option `group=name`."""
    options = registered(group)
    if name not in options:
        raise KeyError(f"{group}={name} is not registered; options: {', '.join(options)}")
    return options[name]


def choices() -> dict[str, tuple[str, ...]]:
    """Every dotted key with a fixed set of values: `<group>.name` for each config group, then the plain keys."""
    return {**{f"{group}.name": tuple(registered(group)) for group in GROUPS}, **KEY_CHOICES}


def ignored_by_option() -> dict[tuple[str, str], tuple[str, ...]]:
    """(option key, value) -> the keys that value makes unused, e.g. ("augment.name", "none") -> alpha, ratio, ..."""
    rules = {(f"{group}.name", name): opt.ignores for group in GROUPS for name, opt in registered(group).items()}
    return {**{key: keys for key, keys in rules.items() if keys}, **IGNORED_BY_KEY_VALUE}


def locating_keys(flat: dict[str, Any]) -> set[str]:
    """The dotted keys of a flattened config that its chosen options read only to find their data."""
    return {key for group in GROUPS for name, opt in registered(group).items()
            if flat.get(f"{group}.name") == name for key in opt.locates}


def ignored_keys(flat: dict[str, Any]) -> set[str]:
    """The dotted keys of a flattened config that its chosen options ignore."""
    return {key for (option_key, value), keys in ignored_by_option().items() if flat.get(option_key) == value
            for key in keys}
