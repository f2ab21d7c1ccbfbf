"""How the statistics of stats.py behave where the truth is known: simulated sweeps of normal runs, judged by the
same code the summary uses (judge_family, compare_to_baseline, probability_of_improvement).

- Family-wise error: the share of sweeps without any true effect in which at least one comparison is called
  better or worse, for one baseline with 8 configurations, and for a crossed sweep (4 learning rates x (none + 2
  mixup configurations)) judged as one family per summary or as one family per baseline.
- Coverage of the 95 % interval of P(better): the share of simulated experiments whose interval holds the true
  probability, paired by seed and unpaired, at 3, 5 and 10 seeds.
- Selection bias: sweeps of 8 equally good configurations with a validation split, where a run's validation and
  test accuracy share its quality, through the summary's own selection (summarize_runs): how far the selected
  configuration's test accuracy lies above the truth, against the bound summary.md states.

`python -m mixupexp.analysis.stats_simulation` prints the figures with the command that made them (`--help` for the
sizes); they are Monte-Carlo estimates, given with their standard errors.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from mixupexp.analysis.stats import (
    SIGNIFICANCE,
    judge_family,
    probability_of_improvement,
)

MEAN, RUN_SD, SEED_SD = 70.0, 1.0, 1.0  # accuracy in points; run noise; a seed's shift, shared by its runs
SEEDS = 3
CONFIGURATIONS = 8  # one baseline, 8 configurations
LEARNING_RATES, MIXUP_CONFIGURATIONS = 4, 2  # crossed: 4 x (none + 2)
P_TRUE = (0.5, 0.76, 0.9)
COVERAGE_SEEDS = (3, 5, 10)
UNEQUAL_SD = 0.05  # the stress case of the unpaired interval: one arm almost without spread


def _seed_shifts(rng: np.random.Generator, seeds: int) -> np.ndarray:
    return rng.normal(0, SEED_SD, seeds)


def _arm(rng: np.random.Generator, shifts: np.ndarray) -> tuple[list[float], list[int]]:
    """One configuration's runs under no effect: (accuracies by seed, seeds)."""
    return list(MEAN + shifts + rng.normal(0, RUN_SD, len(shifts))), list(range(len(shifts)))


def _any_verdict(judgements) -> bool:
    return any(j.verdict.startswith(("better", "worse")) for j in judgements)


def _any_raw(judgements) -> bool:
    return any(j.comparison.p_value < SIGNIFICANCE for j in judgements)


def one_baseline_error(sweeps: int, rng: np.random.Generator, seeds: int = SEEDS,
                       configurations: int = CONFIGURATIONS) -> dict[str, float]:
    """Sweeps of `configurations` against one baseline, no true effect: the share with any false verdict (Holm,
    one family) and with any raw p < significance."""
    holm = raw = 0
    for _ in range(sweeps):
        shifts = _seed_shifts(rng, seeds)
        baseline = _arm(rng, shifts)
        judged = judge_family([_arm(rng, shifts) for _ in range(configurations)], baseline, advise=False)
        holm += _any_verdict(judged)
        raw += _any_raw(judged)
    return {"one family": holm / sweeps, "uncorrected": raw / sweeps}


def crossed_error(sweeps: int, rng: np.random.Generator, seeds: int = SEEDS, learning_rates: int = LEARNING_RATES,
                  configurations: int = MIXUP_CONFIGURATIONS) -> dict[str, float]:
    """Crossed sweeps, no true effect: per learning rate a baseline and `configurations` arms, each compared with
    the baseline of its learning rate. The share of sweeps with any false verdict when all comparisons form one
    family (what judge_family does by default) and when each baseline's form their own; and uncorrected."""
    one = per_baseline = raw = 0
    for _ in range(sweeps):
        shifts = _seed_shifts(rng, seeds)
        pairs, labels = [], []
        for lr in range(learning_rates):
            baseline = _arm(rng, shifts)
            for _ in range(configurations):
                pairs.append((_arm(rng, shifts), baseline))
                labels.append(lr)
        judged = judge_family(pairs, advise=False)
        one += _any_verdict(judged)
        raw += _any_raw(judged)
        per_baseline += _any_verdict(judge_family(pairs, groups=labels, advise=False))
    return {"one family": one / sweeps, "one family per baseline": per_baseline / sweeps,
            "uncorrected": raw / sweeps}


def p_better_coverage(p_true: float, seeds: int, paired: bool, repeats: int, rng: np.random.Generator,
                      baseline_sd: float = RUN_SD) -> float:
    """Share of simulated experiments whose 95 % P(better) interval holds the true value. Paired: the per-seed
    difference is N(mu, 1) on top of a shared seed shift, so P = Phi(mu). Unpaired: runs N(delta, 1) against
    N(0, baseline_sd), so P = Phi(delta / sqrt(1 + baseline_sd^2))."""
    covered = 0
    seed_ids = list(range(seeds))
    for _ in range(repeats):
        if paired:
            baseline = MEAN + _seed_shifts(rng, seeds) + rng.normal(0, RUN_SD, seeds)
            values = baseline + rng.normal(stats.norm.ppf(p_true), 1.0, seeds)
            p = probability_of_improvement(values, baseline, seed_ids, seed_ids)
        else:
            delta = stats.norm.ppf(p_true) * math.hypot(1.0, baseline_sd)
            p = probability_of_improvement(rng.normal(MEAN + delta, 1.0, seeds), rng.normal(MEAN, baseline_sd, seeds))
        covered += p.low <= p_true <= p.high
    return covered / repeats


def selection_bias(sweeps: int, rng: np.random.Generator, seeds: int = SEEDS, configurations: int = CONFIGURATIONS,
                   shared: float = 0.8) -> dict[str, float]:
    """Sweeps of `configurations` equally good configurations plus a baseline, every run of true accuracy MEAN: a
    run's quality q ~ N(0, shared) is in both its validation and test accuracy, each with its own noise of variance
    1 - shared. Returns the mean over sweeps of (selected configuration's test mean - MEAN) and of the bound
    summary.md prints (selection_bias_bound), through summarize_runs."""
    import pandas as pd

    from mixupexp.analysis.table import summarize_runs

    biases, bounds = [], []
    for _ in range(sweeps):
        rows = []
        for config in range(configurations + 1):
            quality = rng.normal(0, math.sqrt(shared), seeds)
            noise = math.sqrt(1 - shared)
            for seed in range(seeds):
                rows.append({"augment": "none" if config == 0 else "mixup",
                             "augment.alpha": None if config == 0 else config / 10, "seed": seed, "status": "ok",
                             "test_acc": MEAN + quality[seed] + rng.normal(0, noise),
                             "val_acc": MEAN + quality[seed] + rng.normal(0, noise), "test_loss": 1.0,
                             "train_loss": 1.0, "train_seconds": 1.0, "wall_seconds": 1.0, "device": "cpu",
                             "precision": "float32", "versions": "", "run_dir": ""})
        summary = summarize_runs(pd.DataFrame(rows))[1]
        chosen = summary[summary["selected"].astype(bool)].iloc[0]
        biases.append(chosen["acc_mean"] - MEAN)
        bounds.append(chosen["selection_bias_bound"])
    return {"bias": float(np.mean(biases)), "bias_se": float(np.std(biases) / math.sqrt(sweeps)),
            "bound": float(np.mean(bounds))}


def _standard_error(rate: float, count: int) -> float:
    return math.sqrt(max(rate * (1 - rate), 1e-12) / count)


def _percent(rate: float, count: int) -> str:
    return f"{100 * rate:5.1f} % ± {100 * _standard_error(rate, count):.1f}"


def report(sweeps: int, repeats: int, seed: int, out: Callable[[str], None] = print) -> None:
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    out(f"python -m mixupexp.analysis.stats_simulation --sweeps {sweeps} --repeats {repeats} --seed {seed}")
    out(f"Runs ~ N({MEAN:g}, {RUN_SD:g}) plus a seed shift ~ N(0, {SEED_SD:g}) shared by the runs of a seed; "
        f"{SEEDS} seeds; verdicts at {100 * SIGNIFICANCE:g} %; ± one Monte-Carlo standard error.")
    out("")
    out(f"Family-wise error: share of {sweeps} sweeps without any true effect with at least one better/worse verdict")
    rates = one_baseline_error(sweeps, rng)
    out(f"  one baseline, {CONFIGURATIONS} configurations:")
    for name, rate in rates.items():
        out(f"    {name:26s} {_percent(rate, sweeps)}")
    rates = crossed_error(sweeps, rng)
    out(f"  crossed, {LEARNING_RATES} learning rates x (none + {MIXUP_CONFIGURATIONS} mixup), "
        f"{LEARNING_RATES * MIXUP_CONFIGURATIONS} comparisons:")
    for name, rate in rates.items():
        out(f"    {name:26s} {_percent(rate, sweeps)}")
    out("")
    out(f"P(better) 95 % interval: share of {repeats} experiments whose interval holds the true value")
    cases = [("paired (share of seeds won)", True, RUN_SD), ("unpaired (P(run beats run))", False, RUN_SD),
             (f"unpaired, baseline sd {UNEQUAL_SD:g} x the other arm's", False, UNEQUAL_SD)]
    out(f"  {'seeds per arm:':56s}" + "".join(f"{f'n = {n}':>17s}" for n in COVERAGE_SEEDS))
    for name, paired, baseline_sd in cases:
        for p_true in P_TRUE:
            cells = [_percent(p_better_coverage(p_true, n, paired, repeats, rng, baseline_sd), repeats)
                     for n in COVERAGE_SEEDS]
            out(f"  {name:46s}P = {p_true:<5g}" + "".join(f"{cell:>17s}" for cell in cells))
    out("")
    selection_sweeps = max(sweeps // 100, 50)
    bias = selection_bias(selection_sweeps, rng)
    out(f"Selection on validation: {selection_sweeps} sweeps of {CONFIGURATIONS} equally good configurations x {SEEDS} "
        "seeds, a run's validation and test accuracy sharing 80 % of their variance (its quality):")
    out(f"  selected configuration's test accuracy above the truth  {bias['bias']:+.2f} ± {bias['bias_se']:.2f} points")
    out(f"  bound stated in summary.md (mean)                       {bias['bound']:+.2f} points")
    out("")
    out(f"({time.perf_counter() - start:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mixupexp.analysis.stats_simulation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=20_000, help="simulated sweeps per family-wise error rate")
    parser.add_argument("--repeats", type=int, default=4_000, help="simulated experiments per coverage figure")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulation's random numbers")
    args = parser.parse_args(argv)
    report(args.sweeps, args.repeats, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
