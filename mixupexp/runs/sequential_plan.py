"""A sequential sweep's command line, before anything runs: its checks, and its jobs for the dry run and the
end-of-sweep account (command_plan.py calls both).

Its jobs are not the product of the sweep overrides with a seed sweep: they are every run the rounds have
started so far (a run directory in the sweep's directory) and the runs of the next round, given the runs found
there -- the first round for a new sweep. Failed runs are planned again, as a command started now retries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from omegaconf import DictConfig

from mixupexp.config.schema import ConfigError
from mixupexp.runs import sequential_family
from mixupexp.runs.sequential_design import (
    SWEEPER_CHOICE,
    Design,
    Runs,
    check_command,
    check_schedule,
    is_sequential,
)
from mixupexp.runs.sequential_settings import Settings

__all__ = ["SequentialPlan", "check_sequential", "is_sequential", "plan_rounds"]


@dataclass
class SequentialPlan:
    design: Design
    runs: Runs
    jobs: list[tuple[list[str], DictConfig, str, Path]]  # (overrides, config, run name, run directory) each
    shrunk: Optional[str] = None  # the line saying the directory's family is larger than this command's

    def lines(self) -> list[str]:
        return self.design.plan_lines(self.runs) + ([self.shrunk] if self.shrunk else [])


def check_sequential(overrides: list[str], hydra_cfg: DictConfig) -> None:
    """ConfigError (one line, naming the key and the fix) for settings that cannot work or a seed given."""
    params = hydra_cfg.sweeper.get("params") or {}
    check_command(overrides, hydra_cfg, dict(params))


def plan_rounds(sweep_dir: Optional[Path], configurations: list[tuple[list[str], DictConfig]],
                hydra_cfg: DictConfig) -> SequentialPlan:
    """The runs of the rounds so far and of the next round, for the sweep's configurations (overrides without
    the seed, composed and checked); ConfigError when the sweep has no baseline to compare with."""
    if sweep_dir is None:
        raise ConfigError(f"{SWEEPER_CHOICE} needs the sweep's directory before it starts, and hydra.sweep.dir "
                          "names values only a running job has; give it a fixed one, hydra.sweep.dir=DIR")
    design = Design.build(Settings.of(hydra_cfg.sweeper), sweep_dir, configurations)
    shrunk = sequential_family.join(design, write=False)
    check_schedule(design)
    runs = design.read_runs(count_failed=set())
    planned = design.next_round(runs, design.decisions(runs))
    jobs = [(arm.job_overrides(index), arm.job_config(design.configs[arm.key], index), arm.run_name(index),
             design.run_dir(arm, index)) for arm, index in design.jobs(runs, planned)]
    return SequentialPlan(design, runs, jobs, shrunk)
