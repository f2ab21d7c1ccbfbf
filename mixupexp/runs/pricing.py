"""What a study will cost before it runs, for `python -m mixupexp.plan`: the seconds a run takes here, and what its
runs buy.

- A run's seconds: from the finished runs in the directory where there are some (their wall time per epoch), else
  from a calibration of this machine (training/calibration.py); the lines say which.
- A fixed sweep: its runs and their time, and the power of its n seeds per configuration at delta (the paired
  t-test at alpha / K, the noncentral t: analysis/operating.py).
- A sequential sweep: its bound and, for true effects of 0, delta/2, delta and 2 delta, the expected runs, their
  90th percentile and time, and the chance of each verdict, simulated through the sweeper's decision rule.

Both need the sd of a paired difference: `hydra.sweeper.assumed_sd` where it is given (a sequential sweep), else
the pooled sd of the paired differences of the finished runs in the directory, else the simulations' default.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mixupexp.analysis import operating
from mixupexp.analysis import sequential as seq
from mixupexp.analysis import stats
from mixupexp.analysis.sequential_simulation import Setting
from mixupexp.config.schema import ConfigError
from mixupexp.records.identity import SEED, identity, identity_hash, plain_config
from mixupexp.runs.sequential_design import Design
from mixupexp.runs.sequential_settings import Settings

if TYPE_CHECKING:  # the plan is handed in; command_plan.py imports the sweeps, which price with this module
    from mixupexp.runs.command_plan import CommandPlan

SIMS = 2000
"""Simulated sweeps per row of the operating table: a share's Monte-Carlo sd is at most 1.1 points."""
DEFAULT_SD = round(Setting().difference_sd, 2)  # 1.41 points: the simulations' paired difference


@dataclass
class AssumedSd:
    value: float
    source: str


def pooled_sd(design: Design) -> tuple[float, int]:
    """(sd, pairs): the pooled sd of the paired differences of every comparison's finished runs; NaN without a
    comparison of 2 pairs."""
    runs = design.read_runs(count_failed=False)
    squares, df, pairs = 0.0, 0, 0
    for family in design.families:
        for member in family.members:
            d = seq.paired_differences(runs.of(member), runs.of(family.baseline), design.settings.max_seeds)
            if len(d) >= 2:
                squares += float(np.var(d, ddof=1)) * (len(d) - 1)
                df += len(d) - 1
                pairs += len(d)
    return (math.sqrt(squares / df) if df else math.nan), pairs


def assumed_sd(design: Design | None, given=None) -> AssumedSd:
    """The paired-difference sd the figures assume, and where it comes from."""
    if given is not None:
        return AssumedSd(float(given), "hydra.sweeper.assumed_sd")
    if design is not None:
        sd, pairs = pooled_sd(design)
        if sd > 0:
            return AssumedSd(sd, f"pooled from the {pairs} paired runs finished in the directory")
    return AssumedSd(DEFAULT_SD, "the simulations' default; set hydra.sweeper.assumed_sd=SD (sequential sweeps) or "
                                 "finish a few paired runs to use your own")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def fixed_design(plan: CommandPlan) -> Design | None:
    """The arms and families of a fixed sweep's jobs (the seed apart); None without a baseline to compare with."""
    jobs = []
    for job in plan.distinct:
        cfg = copy.deepcopy(job.cfg)
        cfg[SEED] = 0
        jobs.append(([o for o in job.overrides if o.split("=", 1)[0].lstrip("+~") != SEED], cfg))
    try:
        return Design.build(Settings(max_seeds=max(len(plan.distinct), seq.MIN_SEEDS)), plan.base_dir, jobs)
    except ConfigError:
        return None


def seeds_per_arm(plan: CommandPlan, design: Design) -> dict[str, int]:
    """The distinct runs (seeds) of each arm of a fixed sweep."""
    keys = [identity_hash(identity(plain_config(job.cfg))) for job in plan.distinct]
    return {arm.key: keys.count(arm.key) for arm in design.arms}


def fixed_lines(plan: CommandPlan, run_seconds: float) -> list[str]:
    """A fixed sweep's price: its runs and time, and the power of its seeds at delta."""
    runs = len(plan.distinct)
    lines = [f"price: {runs} run{'s' * (runs != 1)}, about {duration(runs * run_seconds)} one at a time"]
    design = fixed_design(plan) if plan.base_dir is not None else None
    if design is None or not design.compared:
        return lines + ["power: no configuration is compared with a baseline (augment=none, the same other settings)"]
    n = min(seeds_per_arm(plan, design).values())
    sd = assumed_sd(design)
    k, delta, alpha = design.compared, seq.SMALLEST_EFFECT, stats.SIGNIFICANCE
    power = operating.fixed_power(n, k, sd.value, delta, alpha)
    needed = operating.fixed_n(k, sd.value, delta, alpha)
    power_text = "no test possible with fewer than 2 seeds" if math.isnan(power) else f"{100 * power:.1f} %"
    lines.append(f"power at a true difference of δ = {delta:g} point with {n} seed{'s' * (n != 1)} per configuration: "
                 f"{power_text} (paired t-test at {100 * alpha:g} %/{k}, noncentral t; paired-difference sd "
                 f"{sd.value:.2f} points, {sd.source}); {100 * stats.POWER:g} % power takes {needed:g} seeds")
    return lines


def sequential_lines(design: Design, run_seconds: float, sims: int = SIMS) -> list[str]:
    """A sequential sweep's price: the bound, and its operating table for the assumed sd."""
    settings = design.settings
    sd = assumed_sd(design, settings.assumed_sd)
    sizes = [len(family.members) for family in design.families if family.members]
    setting = Setting(alpha=settings.alpha, smallest_effect=settings.smallest_effect, min_seeds=settings.min_seeds,
                      seeds_per_round=settings.seeds_per_round, max_seeds=settings.max_seeds, test_size=None,
                      design=settings.design)
    bound = design.max_runs()
    lines = [f"price: at most {bound} runs, about {duration(bound * run_seconds)} one at a time; expected, by "
             f"simulation of {sims} sweeps through the {settings.design} design's rule (every configuration at the "
             f"true effect, normal paired differences of sd {sd.value:.2f} points, {sd.source}):",
             "| true effect | runs: mean | 90th percentile | time (mean) | better | worse | within | not settled |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in operating.sweep_table(setting, sizes, sd.value, sims):
        shares = " | ".join(f"{100 * row['shares'][verdict]:.1f} %" for verdict in operating.VERDICTS)
        lines.append(f"| {row['effect']:g} δ ({row['effect'] * settings.smallest_effect:g} points) "
                     f"| {row['runs_mean']:.1f} | {row['runs_p90']:.0f} | {duration(row['runs_mean'] * run_seconds)} "
                     f"| {shares} |")
    return lines
