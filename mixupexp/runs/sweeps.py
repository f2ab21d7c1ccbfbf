"""The sweeps as the shared code sees them: one small interface that the fixed, sequential and tuning sweeps each
implement, so that the plan of a command (command_plan.py), its dry run (dry_run.py) and the report after a sweep
(callbacks.py, summarize.py) call it instead of branching on the sweeper.

What a sweep answers:
- `selects(hydra_cfg)`: whether a composed `hydra` node chooses it;
- `expands_jobs`: whether its jobs are the command line's sweep overrides, expanded as Hydra's basic sweeper does
  (a tuning sweep's sampler chooses its jobs as it goes);
- `check(overrides, hydra_cfg)`: its settings, before any job is composed;
- `plan(command, overrides, hydra_cfg, tools)`: its own part of the plan (the jobs of its rounds, its trials so
  far), given the composed jobs of the command;
- `priced`: whether the dry run may price its time from its jobs; `lines(plan, run_seconds)`: the dry run's lines
  before and after the count of its jobs;
- `owns(sweep_dir)` and `report(sweep_dir, plots)`: a report of its own for a directory it made (a tuning
  study's); the others' directories get the summary of runs (runs/report.py), which judges a sequential sweep's
  runs as the sweep did.

A new sweeper is a class here, its modules, and its Hydra plugin (a thin shim on `LaunchingSweeper`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig

from mixupexp.runs.pricing import fixed_lines, sequential_lines
from mixupexp.runs.sequential_plan import check_sequential, is_sequential, plan_rounds
from mixupexp.runs.tune_plan import is_tune, plan_tune


@dataclass(frozen=True)
class Tools:
    """What a sweep's plan may call of the command's: compose and validate one job's config; check jobs'
    overrides and data as the command's own jobs are checked."""

    compose_job: Callable[[list[str]], DictConfig]
    check_jobs: Callable[[list[tuple[list[str], DictConfig]]], None]


class FixedSweep:
    """Hydra's basic sweeper (and a single run): every job of the expanded sweep, once."""

    name = "fixed"
    expands_jobs = True
    priced = True
    report_files = ""  # what its own report writes beside summary.md, where it has one

    def selects(self, hydra_cfg: Any) -> bool:
        return True

    def check(self, overrides: list[str], hydra_cfg: DictConfig) -> None:
        return None

    def plan(self, command, overrides: list[str], hydra_cfg: DictConfig, tools: Tools) -> Optional[Any]:
        return None  # the command's jobs are the sweep's

    def lines(self, plan, run_seconds: float) -> tuple[list[str], list[str]]:
        return (fixed_lines(plan, run_seconds) if plan.multirun else []), []

    def owns(self, sweep_dir: Path) -> bool:
        return False

    def report(self, sweep_dir: Path, plots: bool) -> list[str]:
        raise NotImplementedError(f"a {self.name} sweep's directory gets the summary of its runs (runs/report.py)")


class SequentialSweep(FixedSweep):
    """hydra/sweeper=sequential: its jobs are the runs of its rounds so far and of the next one."""

    name = "sequential"

    def selects(self, hydra_cfg: Any) -> bool:
        return is_sequential(hydra_cfg)

    def check(self, overrides: list[str], hydra_cfg: DictConfig) -> None:
        check_sequential(overrides, hydra_cfg)

    def plan(self, command, overrides: list[str], hydra_cfg: DictConfig, tools: Tools) -> Any:
        return plan_rounds(command.base_dir, [(job.overrides, job.cfg) for job in command.jobs], hydra_cfg)

    def lines(self, plan, run_seconds: float) -> tuple[list[str], list[str]]:
        return [], plan.sweep.lines() + sequential_lines(plan.sweep.design, run_seconds)



class TuneSweep(FixedSweep):
    """hydra/sweeper=tune: its jobs are the runs of the trials started so far; its space's ends are checked."""

    name = "tuning"
    report_files = "trials.csv, plots"
    expands_jobs = False
    priced = False  # the sampler chooses the next trials: its jobs are not all of its runs

    def selects(self, hydra_cfg: Any) -> bool:
        return is_tune(hydra_cfg)

    def plan(self, command, overrides: list[str], hydra_cfg: DictConfig, tools: Tools) -> Any:
        planned = plan_tune(command.base_dir, overrides, hydra_cfg, tools.compose_job)
        tools.check_jobs(planned.corners)
        return planned

    def lines(self, plan, run_seconds: float) -> tuple[list[str], list[str]]:
        return [], plan.sweep.lines()

    def owns(self, sweep_dir: Path) -> bool:
        from mixupexp.runs.tune_report import is_tune_sweep

        return is_tune_sweep(sweep_dir)

    def report(self, sweep_dir: Path, plots: bool) -> list[str]:
        from mixupexp.runs.tune_report import report

        return report(sweep_dir, plots=plots)


FIXED, SEQUENTIAL, TUNE = FixedSweep(), SequentialSweep(), TuneSweep()
SWEEPS = (SEQUENTIAL, TUNE)  # the sweepers of this package; anything else is swept as Hydra's basic sweeper does


def sweep_of(hydra_cfg: Any, multirun: bool = True) -> FixedSweep:
    """The sweep a composed `hydra` node chooses (the fixed one for a single run)."""
    if multirun:
        for sweep in SWEEPS:
            if sweep.selects(hydra_cfg):
                return sweep
    return FIXED


def report_of_directory(sweep_dir: Path) -> Optional[FixedSweep]:
    """The sweep with a report of its own for this directory (a tuning study's); None: the summary of runs."""
    return next((sweep for sweep in SWEEPS if sweep.owns(sweep_dir)), None)
