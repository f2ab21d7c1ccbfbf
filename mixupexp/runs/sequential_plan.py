"""A sequential sweep's command line, before anything runs: its checks, and its jobs for the dry run and the
end-of-sweep account (command_plan.py calls both).

Its jobs are not the product of the sweep overrides with a seed sweep: they are every run the rounds have
started so far (a run directory in the sweep's directory) and the runs of the next round, given the runs found
there -- the first round for a new sweep. Failed runs are planned again, as a command started now retries them.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from mixupexp.config.schema import ConfigError
from mixupexp.runs.sequential_design import SWEEPER_CHOICE, Design, Runs, Settings, check_command, is_sequential

__all__ = ["SequentialPlan", "check_sequential", "is_sequential", "plan_rounds"]


@dataclass
class SequentialPlan:
    design: Design
    runs: Runs

    def lines(self) -> list[str]:
        return self.design.plan_lines(self.runs)


def check_sequential(overrides: list[str], hydra_cfg: DictConfig) -> None:
    """ConfigError (one line, naming the key and the fix) for settings that cannot work or a seed given."""
    params = hydra_cfg.sweeper.get("params") or {}
    check_command(overrides, hydra_cfg, dict(params))


def plan_rounds(plan, overrides: list[str], hydra_cfg: DictConfig) -> None:
    """Replace `plan`'s jobs (the sweep's configurations, composed and checked) by the runs of its rounds so
    far and of the next round; ConfigError when the sweep has no baseline to compare with."""
    from mixupexp.runs.command_plan import Job  # command_plan imports this module

    if plan.base_dir is None:
        raise ConfigError(f"{SWEEPER_CHOICE} needs the sweep's directory before it starts, and hydra.sweep.dir "
                          "names values only a running job has; give it a fixed one, hydra.sweep.dir=DIR")
    design = Design.build(Settings.of(hydra_cfg.sweeper), plan.base_dir,
                          [(job.overrides, job.cfg) for job in plan.jobs])
    runs = design.read_runs(count_failed=set())
    planned = design.next_round(runs, design.decisions(runs))
    plan.jobs = [Job(arm.job_overrides(seed), arm.job_config(design.configs[arm.key], seed), arm.run_name(seed),
                     design.run_dir(arm, seed)) for arm, seed in design.jobs(runs, planned)]
    plan.sequential = SequentialPlan(design, runs)
