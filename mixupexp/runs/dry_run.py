"""`python -m mixupexp.plan ARGS`: what `python -m mixupexp.train ARGS` would do, without training anything.

Every job of the command line (a sweep's preset included) is composed and checked as the real command does, then
listed with its run directory and what the command would do with it: nothing (`finished`), continue it from its
last checkpoint (`resumable`), train it again after a failure (`failed: retry`), train it (`new`), leave it to
another job of the same command (`duplicate of job K`), or stop at it (`running elsewhere`, `refused`). The last
line counts them and estimates the time left from the finished runs' time per epoch, where there are some, else
from a calibration of this machine (training/calibration.py); what a sweep costs and buys (runs/pricing.py) comes
before it, for a sequential sweep after its rounds.
Nothing is written but the calibration's cache.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import pandas as pd

from mixupexp.records.checkpoint import CHECKPOINT, RESULT, config_differences
from mixupexp.records.identity import plain_config
from mixupexp.records.lock import live_holder
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.cluster import cluster_view
from mixupexp.runs.command_plan import CommandPlan, Job
from mixupexp.runs.pricing import duration


@dataclass
class JobState:
    state: str
    epochs_left: int  # epochs this job would train
    seconds_per_epoch: Optional[float] = None  # measured, for finished runs


def _epochs_done(run_dir: Path) -> int:
    try:
        return len(pd.read_csv(run_dir / "metrics.csv"))
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return 0


def job_state(job: Job) -> JobState:
    """What running the command would do with this (first) job of its run."""
    epochs = int(job.cfg.trainer.epochs)
    if job.run_dir is None:
        return JobState("new (its directory is only known when it runs)", epochs)
    holder = live_holder(job.run_dir)
    if holder is not None:
        return JobState(f"running elsewhere ({holder.describe()})", 0)
    try:
        result = read_result(job.run_dir / RESULT)
    except UnreadableResult as e:
        if not job.cfg.trainer.resume:
            return JobState("restart (trainer.resume=false)", epochs)
        return JobState(f"refused: {e.path.name} {e.problem}", 0)
    if result is None:
        return JobState("new", epochs)
    if config_differences(plain_config(job.cfg), result.get("config", {})):
        return JobState("refused: its directory holds a run of another config", 0)
    status = result.get("status")
    if status == RunStatus.OK:
        seconds = result.get("wall_seconds")
        return JobState("finished", 0, seconds / epochs if seconds else None)
    if not job.cfg.trainer.resume:
        return JobState("restart (trainer.resume=false)", epochs)
    if status in FAILURES:
        return JobState(f"{status}: retry", epochs)
    done = _epochs_done(job.run_dir) if (job.run_dir / CHECKPOINT).exists() else 0
    return JobState(f"resumable (epoch {done} of {epochs} done)" if done else "new", epochs - done)


def seconds_per_epoch(plan: CommandPlan, states: dict[int, JobState]) -> tuple[float, str]:
    """(seconds per epoch, where from): the finished runs' mean where there are some, else the calibration of the
    first job to train (or the first job)."""
    measured = [s.seconds_per_epoch for s in states.values() if s.seconds_per_epoch]
    if measured:
        return statistics.mean(measured), f"measured on {len(measured)} finished run{'s' * (len(measured) != 1)}"
    number = next((n for n, state in states.items() if state.epochs_left), next(iter(states), 0))
    from mixupexp.training.calibration import calibration  # imports the training stack only where it is needed

    calibrated = calibration(plan.jobs[number].cfg)
    return calibrated.seconds_per_epoch, f"{calibrated.text()}, job {number}'s configuration"


def describe(plan: CommandPlan) -> list[str]:
    """The plan's lines: one per job, then the counts and the time estimate."""
    first_job: dict[object, int] = {}
    states: dict[int, JobState] = {}
    lines = []
    cluster = cluster_view(plan)  # where hydra/launcher=slurm submitted them: what squeue/sacct say
    for number, job in enumerate(plan.jobs):
        key = job.run_dir or job.name
        if key in first_job:
            state = f"duplicate of job {first_job[key]}"
        else:
            first_job[key] = number
            states[number] = job_state(job)
            state = states[number].state
        where = job.run_dir if job.run_dir is not None else job.name
        state += cluster.note(number)
        lines.append(f"job {number}: {' '.join(job.overrides) or '(defaults)'}\n    {where}: {state}")
    counts: dict[str, int] = {}
    for state in states.values():
        kind = state.state.split(" (")[0].split(":")[0]
        counts[kind] = counts.get(kind, 0) + 1
    duplicates = len(plan.jobs) - len(states)
    summary = f"{plan.counts()}: " + ", ".join(f"{n} {kind}" for kind, n in counts.items())
    if duplicates:
        summary += f", {duplicates} duplicate{'s' * (duplicates != 1)}"
    epochs_left = sum(s.epochs_left for s in states.values())
    priced = plan.kind.priced  # a tuning sweep's trials are the sampler's to choose: its jobs are not all its runs
    per_epoch, source = seconds_per_epoch(plan, states) if plan.jobs and priced else (math.nan, "")
    if not epochs_left:
        summary += "; nothing left to train"
    elif priced:
        summary += f"; about {duration(per_epoch * epochs_left)} left ({epochs_left} epochs at {per_epoch:.1f} s " \
                   f"per epoch, {source})"
    else:
        summary += f"; {epochs_left} epochs to train"
    run_seconds = per_epoch * int(plan.jobs[0].cfg.trainer.epochs) if plan.jobs else math.nan
    before, after = plan.kind.lines(plan, run_seconds)  # a fixed sweep: what its runs buy; the others: their plan
    lines += before
    lines.append(summary)
    lines += cluster.lines()
    lines += after
    if plan.pinned:
        lines.append(f"(the default directory is new for every command: {plan.pinned[0]} here; add "
                     f"hydra.{'sweep' if plan.multirun else 'run'}.dir=DIR to plan against an earlier one)")
    return lines


