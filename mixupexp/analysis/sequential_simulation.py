"""Monte-Carlo checks of the sequential sweep's decision rule (`sequential.look`), without any training.

Each simulated sweep has one baseline and K configurations, run once per seed. The accuracy of a run is

    acc = base_accuracy + effect (configurations only) + seed effect (shared by every run of that seed) + noise,

optionally rounded to the k/N grid of a test set of N images. The differences d_i = acc_config - acc_baseline
cancel the seed effect; their sd is noise_sd * sqrt(2), and effects are given in units of that sd. Every sweep
is judged by the real decision code: `sequential.look` on the pairs after each round (vectorised over sweeps,
configurations and rounds), each comparison frozen at the first round it settles, as in
`sequential.decide_sweep` (tests check the two agree sweep by sweep).

- error_rate: no true effect; the share of sweeps with any better/worse verdict (must be <= alpha).
- fixed_rerun_error_rate: the same data, the fixed-n paired t-test (scipy.stats.ttest_rel, Bonferroni over
  the K; Holm rejects something exactly when Bonferroni does) re-run after every added seed, stopping at the
  first significant look: the naive rule the sequential test replaces.
- runs_saved: one configuration truly better by effect_sd sd among K: seeds and runs used, power, and the
  fixed design (same level alpha/K, same power) it is compared with.

`python -m mixupexp.analysis.sequential_simulation --sims 2000` prints the table of docs/statistics.md. Its
figures (seed 0; defaults: alpha 0.05, delta 1 point, the safe t-test against +-1 sd, 3 seeds then 2 a round up
to 20, seed sd 1, run noise sd 1 so a paired difference has sd 1.41 points, accuracies on the 1/500 grid):

- family-wise error with no true effect, K = 8: sequential 1.65 % (MC SE 0.28 %); the fixed-n paired t-test
  with Bonferroni/Holm re-run after every seed from 3 to 20: 24.25 % (SE 0.96 %).
- K = 3, seeds per configuration (mean / 90th percentile) and total runs (budget 80):
  0 sd: null configurations 19.7 / 20, 8.6 % of them within +-1, 79.0 runs;
  1 sd: power 83.7 %, the effect's configuration 14.4 / 20 seeds, 73.7 runs; the fixed design with that power
  at alpha/3 needs n = 15 (60 runs): the sequential sweep used 23 % more;
  2 sd: power 100 %, 9.1 / 11 seeds, 68.4 runs; fixed n = 9 at 99 % power (36 runs): 90 % more.
  The runs go to the equal configurations, which cannot be shown within +-1 point with a difference sd of 1.41
  points by 20 seeds and run to the budget. With run noise sd 0.3 (`--noise-sd 0.3 --test-size 10000`,
  difference sd 0.42) they end within +-1 after 8.9 seeds on average (99.9 %), and a 2 sd effect costs
  36.4 runs against the fixed design's 44 (17 % saved). The fixed design's n is chosen knowing the true effect,
  which no real fixed design can. `--e-value mixture` gives the Gaussian mixture's figures (error 0.50 %; at 1 sd
  power 75.0 % with 75.5 runs, 45 % more than its same-power fixed design).
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

from mixupexp.analysis import sequential as seq

BASE_ACCURACY = 77.0  # percent; only matters for the rounding to the grid
SEED_SD = 1.0  # points: the part of a run's accuracy shared by every run of the seed
NOISE_SD = 1.0  # points: the run's own noise; a paired difference has sd NOISE_SD * sqrt(2)
POWER_CAP = 0.99  # the highest power a same-power fixed design is matched to (see runs_saved)


@dataclass(frozen=True)
class Setting:
    """The parameters of one simulated family of sweeps."""

    k: int = 8
    alpha: float = seq.ALPHA
    smallest_effect: float = seq.SMALLEST_EFFECT
    min_seeds: int = seq.MIN_SEEDS
    seeds_per_round: int = seq.SEEDS_PER_ROUND
    max_seeds: int = seq.MAX_SEEDS
    e_value: str = seq.POINT  # seq.POINT or seq.MIXTURE
    scale: float | None = None  # point: the alternative's effect in sd; mixture: g; None: the kind's default
    seed_sd: float = SEED_SD
    noise_sd: float = NOISE_SD
    test_size: int | None = None  # N test images: accuracies rounded to k/N, resolution 100/N; None: no rounding
    design: str = seq.ANYTIME  # seq.ANYTIME (the e-value above) or seq.PLANNED (boundaries for these rounds)
    # Rare collapses, outside the normal model: each run of a configuration (not the baseline's) loses
    # collapse_points with probability collapse_share, and the others gain share * points, so that the means
    # stay those of `effects`: skewed differences at equal means.
    collapse_share: float = 0.0
    collapse_points: float = 0.0

    @property
    def resolution(self) -> float | None:
        return None if self.test_size is None else 100.0 / self.test_size

    @property
    def test(self):
        default = seq.DESIGN_EFFECT if self.e_value == seq.POINT else seq.PRIOR_SCALE
        return seq.design_test(self.design, self.rounds, seq.EValue(self.e_value,
                                                                    default if self.scale is None else self.scale))

    @property
    def rounds(self) -> list[int]:
        return seq.round_bounds(self.min_seeds, self.seeds_per_round, self.max_seeds)

    @property
    def difference_sd(self) -> float:
        return self.noise_sd * math.sqrt(2.0)


def simulate_accuracies(setting: Setting, sims: int, effects=None, rng_seed: int = 0):
    """(baseline (sims, max_seeds), configurations (sims, K, max_seeds)) accuracies in points; `effects`: the K
    true differences in points (default none)."""
    rng = np.random.default_rng(rng_seed)
    k, n = setting.k, setting.max_seeds
    effects = np.zeros(k) if effects is None else np.asarray(effects, dtype=float)
    seed_effect = rng.normal(0.0, setting.seed_sd, size=(sims, 1, n))
    base = BASE_ACCURACY + seed_effect[:, 0] + rng.normal(0.0, setting.noise_sd, size=(sims, n))
    configs = BASE_ACCURACY + effects[None, :, None] + seed_effect + rng.normal(0.0, setting.noise_sd, (sims, k, n))
    if setting.collapse_share:  # drawn only then: the streams of the other settings stay as they were
        collapsed = rng.random(configs.shape) < setting.collapse_share
        configs = configs + setting.collapse_points * (setting.collapse_share - collapsed)
    if setting.test_size is not None:
        grid = setting.test_size / 100.0
        base = np.round(base * grid) / grid
        configs = np.round(configs * grid) / grid
    return base, configs


@dataclass(frozen=True)
class SweepOutcome:
    """The frozen verdicts of simulated sweeps, by the real rule: arrays over (sims, K)."""

    code: np.ndarray  # index into (OPEN, BETTER, WORSE, WITHIN, NOT_SETTLED)
    seeds: np.ndarray  # seeds run for the configuration when it settled
    baseline_seeds: np.ndarray  # (sims,): the baseline runs as long as any configuration is open
    low: np.ndarray
    high: np.ndarray

    @property
    def total_runs(self) -> np.ndarray:
        return self.seeds.sum(axis=1) + self.baseline_seeds


def run_sequential(setting: Setting, base: np.ndarray, configs: np.ndarray) -> SweepOutcome:
    """Judge every simulated sweep round by round with `sequential.look`, freezing each comparison at the first
    round it settles (the last round always settles: the budget)."""
    d = configs - base[:, None, :]
    bounds = setting.rounds
    level = setting.alpha / setting.k
    codes, lows, highs = [], [], []
    for r, below in enumerate(bounds):
        part = d[..., :below]
        code, low, high, _, _ = seq.look(below, part.mean(axis=-1), part.std(axis=-1, ddof=1), level=level,
                                         smallest_effect=setting.smallest_effect, at_budget=r == len(bounds) - 1,
                                         e_value=setting.test, resolution=setting.resolution)
        codes.append(code), lows.append(low), highs.append(high)
    codes, lows, highs = np.stack(codes, -1), np.stack(lows, -1), np.stack(highs, -1)
    first = np.argmax(codes != 0, axis=-1)  # the round each comparison settled
    pick = lambda a: np.take_along_axis(a, first[..., None], -1)[..., 0]
    seeds = np.asarray(bounds)[first]
    return SweepOutcome(pick(codes), seeds, seeds.max(axis=1), pick(lows), pick(highs))


def error_rate(setting: Setting = Setting(), sims: int = 2000, rng_seed: int = 0) -> dict:
    """No true effect, K configurations sharing a baseline, looked at after every round up to max_seeds: the
    share of sweeps with ANY better/worse verdict (the family-wise error; <= alpha by the union bound), with its
    Monte-Carlo standard error, and the share of configurations that ended within +-delta."""
    base, configs = simulate_accuracies(setting, sims, rng_seed=rng_seed)
    out = run_sequential(setting, base, configs)
    wrong = np.isin(out.code, (1, 2)).any(axis=1)
    rate = float(wrong.mean())
    return {"rate": rate, "se": math.sqrt(max(rate * (1 - rate), 1e-12) / sims), "sims": sims,
            "within": float((out.code == 3).mean()), "mean_runs": float(out.total_runs.mean())}


def pruned_error_rate(setting: Setting = Setting(), sims: int = 2000, prune_after_round: int = 0,
                      keep_family: bool = True, rng_seed: int = 0) -> dict:
    """No true effect; the sweep of K configurations runs to round `prune_after_round`, then a second command in
    the same directory compares only the configuration with the best mean difference so far. The share of
    sweeps with any better/worse verdict: those the full sweep gave by then, or the kept configuration's
    afterwards, judged at alpha / K when the directory's family is kept (`keep_family`) or, re-derived from
    the second command line, at alpha / 1 (its rounds replayed at that level, as a command run again does)."""
    base, configs = simulate_accuracies(setting, sims, rng_seed=rng_seed)
    bounds = seq.round_bounds(setting.min_seeds, setting.seeds_per_round, setting.max_seeds)
    full = run_sequential(setting, base, configs)
    settled_by_then = full.seeds <= bounds[prune_after_round]
    wrong = (np.isin(full.code, (1, 2)) & settled_by_then).any(axis=1)
    seen = (configs - base[:, None, :])[..., :bounds[prune_after_round]].mean(axis=-1)
    best = np.argmax(seen, axis=1)
    kept = configs[np.arange(sims), best][:, None, :]
    judge = setting if keep_family else Setting(**{**setting.__dict__, "k": 1})
    wrong |= np.isin(run_sequential(judge, base, kept).code[:, 0], (1, 2))
    rate = float(wrong.mean())
    return {"rate": rate, "se": math.sqrt(max(rate * (1 - rate), 1e-12) / sims), "sims": sims}


def confirmations_error_rate(setting: Setting = Setting(k=1), sims: int = 2000, confirmations: int = 4,
                             split: bool = True, rng_seed: int = 0) -> dict:
    """A tuning study extended `confirmations` times, each extension confirming a new best configuration that
    is no better than its baseline, on fresh seeds: the share of studies with any better/worse verdict among
    the confirmations, each at alpha / 2^j (`split`, tune_design.confirmation_alpha) or each at alpha."""
    wrong = np.zeros(sims, dtype=bool)
    for j in range(1, confirmations + 1):
        level = setting.alpha / 2**j if split else setting.alpha
        one = Setting(**{**setting.__dict__, "k": 1, "alpha": level})
        base, configs = simulate_accuracies(one, sims, rng_seed=rng_seed * 1000 + j)
        wrong |= np.isin(run_sequential(one, base, configs).code[:, 0], (1, 2))
    rate = float(wrong.mean())
    return {"rate": rate, "se": math.sqrt(max(rate * (1 - rate), 1e-12) / sims), "sims": sims}


def fixed_rerun_error_rate(setting: Setting = Setting(), sims: int = 2000, rng_seed: int = 0) -> dict:
    """The same data as error_rate (same rng_seed), judged by the fixed-n paired t-test (ttest_rel) at
    alpha / K (Bonferroni; Holm has the same "any rejection") re-run after every added seed from min_seeds to
    max_seeds, stopping at the first look with any significant comparison: the share of sweeps that stop
    with a false better/worse."""
    base, configs = simulate_accuracies(setting, sims, rng_seed=rng_seed)
    level = setting.alpha / setting.k
    rejected = np.zeros(sims, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant differences on the grid: p = NaN
        for n in range(setting.min_seeds, setting.max_seeds + 1):
            p = stats.ttest_rel(configs[..., :n], base[:, None, :n], axis=-1).pvalue
            rejected |= (np.nan_to_num(p, nan=1.0) < level).any(axis=1)
    rate = float(rejected.mean())
    return {"rate": rate, "se": math.sqrt(max(rate * (1 - rate), 1e-12) / sims), "sims": sims}


def fixed_power(effect_sd: float, n: int, level: float) -> float:
    """Power of the two-sided paired t-test with n pairs at `level` for a true effect of effect_sd sd of a
    difference (the noncentral t distribution)."""
    if n < 2:
        return 0.0
    df, critical = n - 1, stats.t.ppf(1 - level / 2, n - 1)
    shift = effect_sd * math.sqrt(n)
    far = np.nan_to_num(stats.nct.cdf(-critical, df, shift), nan=0.0)
    return float(stats.nct.sf(critical, df, shift) + far)


def fixed_n_for_power(effect_sd: float, power: float, level: float, largest: int = 1000) -> int | None:
    """The smallest n >= 2 whose fixed paired t-test at `level` reaches `power`; None past `largest`."""
    for n in range(2, largest + 1):
        if fixed_power(effect_sd, n, level) >= power:
            return n
    return None


def runs_saved(effect_sd: float, setting: Setting = Setting(k=3), sims: int = 2000, rng_seed: int = 0) -> dict:
    """One configuration (the first) truly better by effect_sd sd of a paired difference, the other K-1 equal
    to the baseline (effect_sd = 0: all equal). Returns the seeds used per configuration (mean, 90th
    percentile; the effect's and the null ones'), total runs (mean, 90th percentile), the power (share of
    sweeps calling the effect better), the share of null configurations ending within +-delta, the share of
    sweeps with any wrong verdict, and the fixed design's n (at alpha/K, reaching the same power by the exact
    noncentral t, at most POWER_CAP) with its (K+1) n runs and the share of them the sequential
    sweep saves on average (negative: it used more)."""
    effects = np.zeros(setting.k)
    effects[0] = effect_sd * setting.difference_sd
    base, configs = simulate_accuracies(setting, sims, effects, rng_seed)
    out = run_sequential(setting, base, configs)
    null = out.code[:, 1:] if effect_sd else out.code
    null_seeds = out.seeds[:, 1:] if effect_sd else out.seeds
    wrong_null = np.isin(null, (1, 2)).any(axis=1)
    result = {
        "effect_sd": effect_sd, "sims": sims, "k": setting.k,
        "null_seeds_mean": float(null_seeds.mean()), "null_seeds_p90": float(np.percentile(null_seeds, 90)),
        "null_within": float((null == 3).mean()),
        "runs_mean": float(out.total_runs.mean()), "runs_p90": float(np.percentile(out.total_runs, 90)),
        "budget": seq.max_runs(setting.k, setting.max_seeds),
        "power": math.nan, "effect_seeds_mean": math.nan, "effect_seeds_p90": math.nan,
        "fixed_n": None, "fixed_runs": None, "saved": math.nan,
    }
    if effect_sd:
        effect_code = out.code[:, 0]
        wrong_effect = (effect_code == 2) | ((effect_code == 3) & (abs(effects[0]) >= setting.smallest_effect))
        power = float((effect_code == 1).mean())
        # The fixed design's power is exact (noncentral t); the sequential one's is measured, and a measured
        # 100 % would ask for 1 - 1/sims, a target that moves with the number of sweeps: at most POWER_CAP.
        fixed_n = fixed_n_for_power(effect_sd, min(power, POWER_CAP), setting.alpha / setting.k)
        result.update(power=power, effect_seeds_mean=float(out.seeds[:, 0].mean()),
                      effect_seeds_p90=float(np.percentile(out.seeds[:, 0], 90)), fixed_n=fixed_n)
        if fixed_n is not None:
            fixed_runs = (setting.k + 1) * fixed_n
            result.update(fixed_runs=fixed_runs, saved=1.0 - result["runs_mean"] / fixed_runs)
        result["wrong"] = float((wrong_null | wrong_effect).mean())
    else:
        result["wrong"] = float(wrong_null.mean())
    return result


def _format(x, digits=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=2000, help="simulated sweeps per line of the table")
    parser.add_argument("--seed", type=int, default=0, help="random stream")
    parser.add_argument("--k-null", type=int, default=8, help="configurations in the error-rate family")
    parser.add_argument("--k", type=int, default=3, help="configurations in the runs-saved family")
    parser.add_argument("--alpha", type=float, default=seq.ALPHA)
    parser.add_argument("--smallest-effect", type=float, default=seq.SMALLEST_EFFECT, help="delta, points")
    parser.add_argument("--e-value", choices=(seq.POINT, seq.MIXTURE), default=seq.POINT,
                        help="the safe t-test against a point alternative, or the Gaussian mixture")
    parser.add_argument("--scale", type=float, default=None,
                        help=f"point: the alternative's effect in sd of a difference (default {seq.DESIGN_EFFECT:g}); "
                             f"mixture: the prior variance g (default {seq.PRIOR_SCALE:g})")
    parser.add_argument("--min-seeds", type=int, default=seq.MIN_SEEDS)
    parser.add_argument("--seeds-per-round", type=int, default=seq.SEEDS_PER_ROUND)
    parser.add_argument("--max-seeds", type=int, default=seq.MAX_SEEDS)
    parser.add_argument("--seed-sd", type=float, default=SEED_SD)
    parser.add_argument("--noise-sd", type=float, default=NOISE_SD)
    parser.add_argument("--test-size", type=int, default=500, help="N test images for the k/N grid; 0: no rounding")
    args = parser.parse_args(argv)
    common = {"alpha": args.alpha, "smallest_effect": args.smallest_effect,
              "e_value": args.e_value, "scale": args.scale,
              "min_seeds": args.min_seeds, "seeds_per_round": args.seeds_per_round, "max_seeds": args.max_seeds,
              "seed_sd": args.seed_sd, "noise_sd": args.noise_sd, "test_size": args.test_size or None}
    seq.check_settings(args.alpha, args.smallest_effect, args.min_seeds, args.max_seeds, args.seeds_per_round)
    command = "python -m mixupexp.analysis.sequential_simulation " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    print(f"$ {command.strip()}")
    print("parameters: " + ", ".join(f"{key}={value}" for key, value in {**vars(args)}.items()))
    print(f"rounds (seeds run after each): {seq.round_bounds(args.min_seeds, args.seeds_per_round, args.max_seeds)}; "
          f"difference sd {args.noise_sd * math.sqrt(2):.3g} points; e-value: {Setting(**common).test.text}")
    print()

    null = Setting(k=args.k_null, **common)
    sequential = error_rate(null, args.sims, args.seed)
    fixed = fixed_rerun_error_rate(null, args.sims, args.seed)
    print(f"Family-wise error, no true effect, K = {args.k_null}, {args.sims} sweeps, looked at after every round "
          f"(sequential) or every seed (fixed):")
    print("| rule | sweeps with any better/worse | MC SE |")
    print("| --- | --- | --- |")
    print(f"| sequential (CS at alpha/K, frozen when settled) | {100 * sequential['rate']:.2f} % | "
          f"{100 * sequential['se']:.2f} % |")
    print(f"| fixed-n paired t-test, Bonferroni/Holm, re-run after every seed | {100 * fixed['rate']:.2f} % | "
          f"{100 * fixed['se']:.2f} % |")
    print(f"(sequential, null configurations ending within ±{args.smallest_effect:g}: "
          f"{100 * sequential['within']:.1f} %; mean runs {sequential['mean_runs']:.1f} of "
          f"{seq.max_runs(args.k_null, args.max_seeds)})")
    print()

    family = Setting(k=args.k, **common)
    print(f"Runs used, K = {args.k}, one configuration better by 0 / 1 / 2 sd of a paired difference, "
          f"{args.sims} sweeps; the fixed design at alpha/K with the same power:")
    print("| effect | power | effect config seeds mean / p90 | null config seeds mean / p90 | null within ±δ | "
          "any wrong verdict | total runs mean / p90 | fixed n | fixed runs | runs saved |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for effect_sd in (0.0, 1.0, 2.0):
        r = runs_saved(effect_sd, family, args.sims, args.seed)
        power = "—" if math.isnan(r["power"]) else f"{100 * r['power']:.1f} %"
        saved = "—" if math.isnan(r["saved"]) else f"{100 * r['saved']:.0f} %"
        print(f"| {effect_sd:g} sd | {power} | {_format(r['effect_seeds_mean'])} / {_format(r['effect_seeds_p90'], 0)} "
              f"| {r['null_seeds_mean']:.1f} / {r['null_seeds_p90']:.0f} | {100 * r['null_within']:.1f} % "
              f"| {100 * r['wrong']:.2f} % | {r['runs_mean']:.1f} / {r['runs_p90']:.0f} (budget {r['budget']}) "
              f"| {_format(r['fixed_n'])} | {_format(r['fixed_runs'])} | {saved} |")


if __name__ == "__main__":
    main()
