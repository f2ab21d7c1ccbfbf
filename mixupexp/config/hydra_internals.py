"""The two parts of Hydra that this package needs and Hydra does not export, in one place (hydra-core 1.3, which
pyproject.toml pins to 1.3.x):

- `expand_sweep`: a command line's sweep overrides (`augment=none,mixup seed=0,1`) as the list of its jobs'
  overrides, exactly as Hydra's basic sweeper expands them (its cartesian product, in its order);
- `args_parser`: Hydra's own argument parser (`--multirun`, `--cfg`, ...), so that a command line is read here as
  `hydra.main` will read it.

A change in Hydra that breaks either breaks the tests that compose and expand every preset's sweep.
"""

from __future__ import annotations

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"  # the launcher of one job at a time


def expand_sweep(overrides: list) -> list[list[str]]:
    """Every job's overrides of a sweep (override strings or parsed Overrides), as Hydra's basic sweeper runs them."""
    return [list(job) for job in BasicSweeper.split_arguments(overrides, max_batch_size=None)[0]]


def args_parser():
    return get_args_parser()
