"""Operating characteristics of a sweep before it runs: for a sequential sweep, the runs it is expected to take and
the chance of each verdict at a given true effect; for a fixed sweep, the power of its n; and the comparison of
the two sequential designs with the fixed design powered at delta.

A sequential sweep's figures are simulated through the sweeper's own rule (`sequential_simulation.run_sequential`,
which takes `sequential.decide_sweep`'s decisions sweep by sweep), with normal paired differences of sd `sd`
points and every configuration of a family at the same true effect. A fixed sweep's are exact: the noncentral t
(`stats.t_test_power`, `stats.seeds_needed`), Bonferroni over the K comparisons.

`python -m mixupexp.analysis.operating --sims 2000` prints the comparison of docs/statistics.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import shlex
import sys

import numpy as np

from mixupexp.analysis import sequential as seq
from mixupexp.analysis import stats
from mixupexp.analysis.sequential_simulation import Setting, run_sequential, simulate_accuracies

EFFECTS = (0.0, 0.5, 1.0, 2.0)
"""True effects of the operating table `python -m mixupexp.plan` prints, in units of delta."""
COMPARISON_EFFECTS = (0.0, 0.5, 1.0, 1.5, 2.0)
COMPARISON_SDS = (0.42, 0.85, 1.41)
COMPARISON_KS = (1, 3, 8)
VERDICTS = (seq.BETTER, seq.WORSE, seq.WITHIN, seq.NOT_SETTLED)
_CODE = {verdict: code for code, verdict in enumerate((seq.OPEN, *VERDICTS))}


def with_difference_sd(setting: Setting, sd: float) -> Setting:
    """`setting` with paired differences of sd `sd` points (the seed effect cancels in a difference)."""
    return dataclasses.replace(setting, noise_sd=sd / math.sqrt(2.0))


def operating_row(setting: Setting, effect: float, sims: int, rng_seed: int = 0) -> dict:
    """Every one of the K configurations better than the baseline by `effect` points: the runs of the family
    (array over the sims), the share of comparisons ending in each verdict, and the share of sweeps with any wrong
    verdict (worse; better at effect 0; within at |effect| >= delta)."""
    base, configs = simulate_accuracies(setting, sims, np.full(setting.k, effect), rng_seed)
    out = run_sequential(setting, base, configs)
    shares = {verdict: float((out.code == _CODE[verdict]).mean()) for verdict in VERDICTS}
    wrong = out.code == _CODE[seq.WORSE]
    if effect == 0:
        wrong |= out.code == _CODE[seq.BETTER]
    if abs(effect) >= setting.smallest_effect:
        wrong |= out.code == _CODE[seq.WITHIN]
    return {"effect": effect, "runs": out.total_runs, "shares": shares, "wrong": float(wrong.any(axis=1).mean())}


def summarise_runs(runs: np.ndarray) -> dict:
    return {"runs_mean": float(np.mean(runs)), "runs_p90": float(np.percentile(runs, 90))}


def family_settings(setting: Setting, family_sizes: list[int]) -> list[Setting]:
    """One Setting per family of a sweep (its members), each comparison at alpha / K, K all of them."""
    total = sum(family_sizes)
    return [dataclasses.replace(setting, k=size, alpha=setting.alpha * size / total) for size in family_sizes]


def sweep_table(setting: Setting, family_sizes: list[int], sd: float, sims: int, effects=EFFECTS,
                rng_seed: int = 0) -> list[dict]:
    """The operating table of a sweep of families (members per family): per true effect (in units of delta),
    the expected runs of the whole sweep, their 90th percentile and the share of comparisons ending in each
    verdict; every configuration at that effect, paired-difference sd `sd` points."""
    rows = []
    for multiple in effects:
        effect = multiple * setting.smallest_effect
        parts = [operating_row(with_difference_sd(family, sd), effect, sims, rng_seed + number)
                 for number, family in enumerate(family_settings(setting, family_sizes))]
        weights = np.asarray(family_sizes, dtype=float) / sum(family_sizes)
        shares = {verdict: float(sum(w * part["shares"][verdict] for w, part in zip(weights, parts)))
                  for verdict in VERDICTS}
        rows.append({"effect": multiple, **summarise_runs(sum(part["runs"] for part in parts)), "shares": shares})
    return rows


def fixed_power(n: int, k: int, sd: float, delta: float = seq.SMALLEST_EFFECT, alpha: float = seq.ALPHA) -> float:
    """Power of a fixed sweep's paired t-test with n seeds per configuration at a true effect delta, each of its
    k comparisons at alpha / k (Bonferroni; Holm rejects at least as much): the noncentral t."""
    if n < 2 or not sd > 0:
        return math.nan
    return stats.t_test_power(delta / sd, n, alpha / max(k, 1), paired=True)


def fixed_n(k: int, sd: float, delta: float = seq.SMALLEST_EFFECT, alpha: float = seq.ALPHA,
            power: float = stats.POWER) -> float:
    """Seeds per configuration of the fixed design powered at delta: the paired t-test at alpha / k reaching
    `power` at a true effect delta (the noncentral t, at least 2 pairs)."""
    return stats.seeds_needed(delta, sd, alpha / max(k, 1), paired=True, power=power, minimum=2)


def comparison_rows(setting: Setting, sims: int, rng_seed: int = 0, sds=COMPARISON_SDS, ks=COMPARISON_KS,
                    effects=COMPARISON_EFFECTS) -> list[dict]:
    """Both sequential designs against the fixed design powered at delta, for every sd, K and true effect: the
    expected runs (and 90th percentile), their share of the fixed design's (K + 1) n runs, the power (share of
    comparisons called better) and the share of sweeps with any wrong verdict."""
    rows = []
    for sd in sds:
        for k in ks:
            n = fixed_n(k, sd, setting.smallest_effect, setting.alpha)
            fixed_runs = (k + 1) * n
            for design in seq.DESIGNS:
                family = with_difference_sd(dataclasses.replace(setting, k=k, design=design), sd)
                for multiple in effects:
                    row = operating_row(family, multiple * setting.smallest_effect, sims, rng_seed)
                    rows.append({"sd": sd, "k": k, "design": design, "effect": multiple, "fixed_n": n,
                                 "fixed_runs": fixed_runs, **summarise_runs(row["runs"]),
                                 "share": float(np.mean(row["runs"])) / fixed_runs,
                                 "power": row["shares"][seq.BETTER], "wrong": row["wrong"]})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="the sequential designs against the fixed design powered at delta")
    parser.add_argument("--sims", type=int, default=2000, help="simulated sweeps per row")
    parser.add_argument("--seed", type=int, default=0, help="random stream")
    args = parser.parse_args(argv)
    setting = Setting()
    command = "python -m mixupexp.analysis.operating " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"$ {command.strip()}")
    print(f"alpha {setting.alpha}, delta {setting.smallest_effect:g} point, rounds {setting.rounds}, normal paired "
          f"differences, every configuration at the true effect; fixed design: the paired t-test at alpha / K with "
          f"{100 * stats.POWER:.0f} % power at delta (noncentral t), (K + 1) n runs; {args.sims} sweeps a row")
    print("| sd | K | fixed n (runs) | effect | anytime: runs mean / p90 (share of fixed) | power | wrong "
          "| planned: runs mean / p90 (share of fixed) | power | wrong |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    rows = comparison_rows(setting, args.sims, args.seed)
    by_key = {(r["sd"], r["k"], r["design"], r["effect"]): r for r in rows}
    for (sd, k, design, effect), row in by_key.items():
        if design != seq.ANYTIME:
            continue
        cells = []
        for name in seq.DESIGNS:
            r = by_key[(sd, k, name, effect)]
            cells += [f"{r['runs_mean']:.1f} / {r['runs_p90']:.0f} ({100 * r['share']:.0f} %)",
                      f"{100 * r['power']:.1f} %", f"{100 * r['wrong']:.2f} %"]
        print(f"| {sd:g} | {k} | {row['fixed_n']:g} ({row['fixed_runs']:g}) | {effect:g} δ | "
              + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
