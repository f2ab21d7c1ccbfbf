"""Statistics over seeds: the mean with its t-distribution confidence interval; a configuration against its
baseline (difference of means, its confidence interval, a t-test p-value and the probability of improvement);
Holm's correction over a family of such comparisons, with simultaneous intervals at the family's level; and the
power of the test (the smallest difference the seeds at hand detect, the seeds needed for a given difference).

Plain functions of arrays, so that the summary and the tests share them. Where a quantity cannot be computed
(fewer than two runs) it is NaN rather than an error: a sweep with one seed per configuration still summarises.

Accuracies are whole test images, k / N * 100: their floating-point values carry rounding error of ~1e-14, which a
t-test would take for a real, tiny spread. Whether runs spread at all is therefore judged on the data's resolution
(`resolution`: the smallest step of the accuracy, 100 / N points), or, where it is not given, on a tolerance
relative to the values' magnitude (RELATIVE_TOLERANCE); a spread below half the resolution is no spread.

`python -m mixupexp.analysis.stats_simulation` measures the family-wise error rate of the verdicts and the coverage of the
P(better) intervals on simulated sweeps.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
POWER = 0.8
MIN_SEEDS = 3  # never advise fewer: two runs say nothing about the spread they estimate
MAX_SEEDS = 1000  # beyond this the advice is "more than 1000"
# The bootstrap these named was replaced by intervals that cover at a few seeds (probability_of_improvement);
# the names stay so that code importing them keeps running.
BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
# Without a known resolution: differences below this share of the values' magnitude are rounding error. Accuracies
# near 100 carry errors of ~1e-14; a real step of one test image in a million is still 1e-4.
RELATIVE_TOLERANCE = 1e-9
PAIRED = "paired t-test"
WELCH = "Welch t-test"
UNTESTED = "none (fewer than 2 runs)"
NO_SPREAD = "none (an arm has no spread)"
CONSTANT_DIFFERENCE = "none (every seed gave the same difference)"
NOT_TESTABLE = (NO_SPREAD, CONSTANT_DIFFERENCE)
# Why a comparison with seeds given was not paired by seed (Comparison.note).
FEWER_THAN_TWO_COMMON_SEEDS = "unpaired: fewer than 2 seeds finished in both arms"
DUPLICATE_SEEDS = "unpaired: a seed appears more than once in an arm, so runs cannot be matched by seed"
# What a P(better) estimates (Probability.kind): two different quantities, never to be read as one.
SEEDS_WON = "paired: share of seeds won"
RUNS_WON = "unpaired: P(run beats run)"


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    sem: float  # standard error of the mean
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A configuration against its baseline. Every number here comes from the same runs: the pairs of the seeds
    both arms finished when paired, else every finished run of each arm."""

    delta: float  # mean of the configuration minus mean of the baseline
    low: float  # confidence interval of delta at `confidence`
    high: float
    p_value: float
    test: str  # PAIRED, WELCH, UNTESTED or one of NOT_TESTABLE
    # The spread the test divides by: sd of the per-seed differences (paired) or the pooled sd of the two arms
    # (unpaired); and the runs it used: the pairs (paired), the smaller arm (unpaired). They size the next
    # experiment (detectable_difference, seeds_needed).
    spread: float = math.nan
    n: int = 0
    # Why the runs were compared this way where it is not the plain case: the reason for falling back to an
    # unpaired test although seeds were given, or the runs left out of the pairs. "" otherwise.
    note: str = ""
    seeds: tuple = ()  # the seeds of the pairs, in the configuration's order; () when unpaired
    n_values: int = 0  # runs of the configuration behind delta
    n_baseline: int = 0  # runs of the baseline behind delta
    se: float = math.nan  # standard error of delta
    df: float = math.nan  # degrees of freedom of its t distribution (Welch-Satterthwaite when unpaired)
    confidence: float = CONFIDENCE

    @property
    def paired(self) -> bool:
        return self.test in (PAIRED, CONSTANT_DIFFERENCE)

    def interval(self, confidence: float) -> tuple[float, float]:
        """The confidence interval of delta at another level (NaN where no test was possible)."""
        return _t_interval(self.delta, self.se, self.df, confidence)


def _t_interval(delta: float, se: float, df: float, confidence: float) -> tuple[float, float]:
    if not (se > 0):
        return math.nan, math.nan
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    return delta - half, delta + half


@dataclass(frozen=True)
class Probability:
    """P(better) with its confidence interval; 0.5 = no effect. Paired and unpaired estimate different things
    (`kind`): the share of seeds where the configuration's run beat the baseline's run of the same seed, or the
    probability that a run of the configuration beats an independent run of the baseline."""

    estimate: float
    low: float
    high: float
    kind: str = ""  # SEEDS_WON or RUNS_WON; "" when there was nothing to compare
    n: int = 0  # seeds compared (paired), runs of the smaller arm (unpaired): the trials the interval rests on


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=float)
    return x[~np.isnan(x)]


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> MeanCI:
    """Mean of `values` (NaNs dropped) with the t-distribution confidence interval; NaN bounds for n < 2."""
    x = _finite(values)
    n = len(x)
    if n == 0:
        return MeanCI(0, np.nan, np.nan, np.nan, np.nan)
    mean = float(x.mean())
    if n < 2:
        return MeanCI(n, mean, np.nan, np.nan, np.nan)
    sem = float(stats.sem(x))
    if sem == 0:  # t.interval cannot scale by 0; every run agrees, so the interval is the point
        return MeanCI(n, mean, 0.0, mean, mean)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanCI(n, mean, sem, float(low), float(high))


def clip_interval(low: float, high: float, lower: float = 0.0, upper: float = 100.0) -> tuple[float, float]:
    """A confidence interval of a percentage cut to the values it can take (a t interval ignores the bounds)."""
    return float(np.clip(low, lower, upper)), float(np.clip(high, lower, upper))  # NaN stays NaN


def tolerance(resolution: float | None, *arrays: np.ndarray) -> float:
    """The largest difference between runs that is no difference: half the data's resolution (the smallest step
    of the values, e.g. 100 / N_test points of accuracy), or, without one, rounding error relative to the largest
    magnitude among `arrays`."""
    if resolution is not None and np.isfinite(resolution) and resolution > 0:
        return resolution / 2
    magnitude = max((float(np.max(np.abs(x))) for x in arrays if len(x)), default=0.0)
    return RELATIVE_TOLERANCE * max(1.0, magnitude)


def _no_spread(x: np.ndarray, tol: float) -> bool:
    return float(np.ptp(x)) < tol


def _known(seed) -> bool:
    return seed is not None and not (isinstance(seed, float) and math.isnan(seed))


@dataclass(frozen=True)
class MatchedRuns:
    """The runs a comparison uses: matched pairs (a[i] and b[i] ran seed seeds[i]) or each arm's finished runs."""

    a: np.ndarray
    b: np.ndarray
    paired: bool
    seeds: tuple = ()
    note: str = ""


def _runs(n: int) -> str:
    return f"{n} run{'s' * (n != 1)}"


def match_by_seed(values: Sequence[float], baseline: Sequence[float], seeds: Sequence | None = None,
                  baseline_seeds: Sequence | None = None) -> MatchedRuns:
    """The runs to compare: paired on the seeds both arms finished (NaN = not finished) when there are at least 2
    of them, else every finished run of each arm, unpaired, with the reason. Pairing removes the seed's shared
    share of the noise, so it is kept whenever it can be: a seed that only one arm finished drops out of the
    pairs rather than unpairing the rest. Seeds repeated within an arm leave no unique match: unpaired."""
    a_all, b_all = np.asarray(values, dtype=float), np.asarray(baseline, dtype=float)
    unpaired = MatchedRuns(a_all[~np.isnan(a_all)], b_all[~np.isnan(b_all)], paired=False)
    if seeds is None or baseline_seeds is None:
        return unpaired
    seeds, baseline_seeds = list(seeds), list(baseline_seeds)
    if len(seeds) != len(a_all) or len(baseline_seeds) != len(b_all):
        raise ValueError("one seed per run: the seeds and the values of an arm differ in length")
    for arm in (seeds, baseline_seeds):
        known = [s for s in arm if _known(s)]
        if len(set(known)) != len(known):
            return MatchedRuns(unpaired.a, unpaired.b, paired=False, note=DUPLICATE_SEEDS)
    finished = {s: v for s, v in zip(seeds, a_all) if _known(s) and not np.isnan(v)}
    finished_baseline = {s: v for s, v in zip(baseline_seeds, b_all) if _known(s) and not np.isnan(v)}
    common = tuple(s for s in seeds if s in finished and s in finished_baseline)
    if len(common) < 2:
        return MatchedRuns(unpaired.a, unpaired.b, paired=False, note=FEWER_THAN_TWO_COMMON_SEEDS)
    left_out = len(unpaired.a) + len(unpaired.b) - 2 * len(common)
    note = (f"paired on the {len(common)} seeds both arms finished, leaving out {_runs(left_out)} finished in one "
            "arm only" if left_out else "")
    return MatchedRuns(np.array([finished[s] for s in common]), np.array([finished_baseline[s] for s in common]),
                       paired=True, seeds=common, note=note)


def paired_values(values: Sequence[float], baseline: Sequence[float], seeds: Sequence | None = None,
                  baseline_seeds: Sequence | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """(configuration, baseline) runs of the seeds both arms finished, matched by seed; None when the arms are
    compared unpaired (fewer than 2 such seeds, seeds not given or repeated): see match_by_seed."""
    runs = match_by_seed(values, baseline, seeds, baseline_seeds)
    return (runs.a, runs.b) if runs.paired else None


def compare_to_baseline(
    values: Sequence[float],
    baseline: Sequence[float],
    seeds: Sequence | None = None,
    baseline_seeds: Sequence | None = None,
    confidence: float = CONFIDENCE,
    resolution: float | None = None,
) -> Comparison:
    """Difference of means (values - baseline) with its confidence interval and a two-sided t-test.

    With seeds given, runs are paired on the seeds both arms finished (a paired t-test on the differences, which
    removes the seed's shared share of the noise); with fewer than 2 such seeds, seeds repeated within an arm, or
    no seeds given, Welch's t-test on every finished run, which does not assume equal variances (`note` says why
    where seeds were given). `n`, `seeds`, `n_values` and `n_baseline` name the runs used. Without spread to scale by
    (an arm whose runs all agree, or the same difference at every seed, judged on `resolution`: see tolerance) a
    t-test would divide by (nearly) zero and call any difference certain: such a comparison is not testable.
    """
    runs = match_by_seed(values, baseline, seeds, baseline_seeds)
    a, b = runs.a, runs.b
    used = {"note": runs.note, "seeds": runs.seeds, "n_values": len(a), "n_baseline": len(b),
            "confidence": confidence}
    if len(a) == 0 or len(b) == 0:
        return Comparison(math.nan, math.nan, math.nan, math.nan, UNTESTED, **used)
    tol = tolerance(resolution, a, b)
    if runs.paired:
        differences = a - b
        n = len(differences)
        delta = float(differences.mean())
        if _no_spread(differences, tol):
            return Comparison(delta, math.nan, math.nan, math.nan, CONSTANT_DIFFERENCE, 0.0, n, **used)
        spread = float(np.std(differences, ddof=1))
        se, df, test = spread / math.sqrt(n), n - 1, PAIRED
    else:
        delta = float(a.mean() - b.mean())
        n = min(len(a), len(b))
        if n < 2:
            return Comparison(delta, math.nan, math.nan, math.nan, UNTESTED, n=n, **used)
        if _no_spread(a, tol) or _no_spread(b, tol):
            return Comparison(delta, math.nan, math.nan, math.nan, NO_SPREAD, n=n, **used)
        share_a, share_b = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(share_a + share_b)
        df = (share_a + share_b) ** 2 / (share_a ** 2 / (len(a) - 1) + share_b ** 2 / (len(b) - 1))
        spread, test = float(np.sqrt((a.var(ddof=1) + b.var(ddof=1)) / 2)), WELCH
    p_value = float(2 * stats.t.sf(abs(delta) / se, df))
    low, high = _t_interval(delta, se, df, confidence)
    return Comparison(delta, low, high, p_value, test, spread, n, se=float(se), df=float(df), **used)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values of one family of tests (NaN = not tested: left out of the family).

    The i-th smallest of m p-values becomes max over j <= i of min(1, (m - j + 1) p_(j)). Rejecting where the
    adjusted value is below the level keeps the chance of any false "better"/"worse" in the family at that level,
    whatever the dependence between the tests.
    """
    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    m = len(tested)
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted


def _clopper_pearson(successes: float, trials: float, confidence: float) -> tuple[float, float]:
    """The exact binomial interval, through beta quantiles (which also take a fractional count)."""
    tail = (1 - confidence) / 2
    low = 0.0 if successes <= 0 else float(stats.beta.ppf(tail, successes, trials - successes + 1))
    high = 1.0 if successes >= trials else float(stats.beta.ppf(1 - tail, successes + 1, trials - successes))
    return low, high


def probability_of_improvement(
    values: Sequence[float],
    baseline: Sequence[float],
    seeds: Sequence | None = None,
    baseline_seeds: Sequence | None = None,
    confidence: float = CONFIDENCE,
    resamples: int | None = None,
    rng_seed: int | None = None,
    resolution: float | None = None,
) -> Probability:
    """P(configuration beats baseline), ties counting half, with a confidence interval that holds its level at
    a few seeds. The runs are those compare_to_baseline uses (see match_by_seed).

    Paired (kind SEEDS_WON): the estimand is P(a run of the configuration beats the baseline's run of the same
    seed); the estimate is the share of seeds won. Each seed is an independent trial, so the interval is the
    Clopper-Pearson interval (exact binomial, conservative). A tie (a difference below half the resolution) counts
    as a loss for the lower bound and as a win for the upper one, which keeps it conservative with ties: the lower
    bound then covers P(win) <= the estimand, the upper one P(win or tie) >= it.

    Unpaired (kind RUNS_WON): the estimand is P(X > Y) + P(X = Y) / 2 for independent runs X of the configuration
    and Y of the baseline; the estimate is the Mann-Whitney U / (m n). The m n comparisons are not independent:
    U / (m n) is the average, over the ways of matching k = min(m, n) runs of one arm with k of the other, of the
    share won among k independent matched pairs (Hoeffding 1963, section 5), a binomial share with k trials, so
    its variance is at most P(1 - P) / k. The interval is Clopper-Pearson with k trials at the observed share (ties
    as above): conservative, and it keeps covering when the arms' spreads differ. Asymptotic variances do not
    hold up here: Clopper-Pearson on the Hanley-McNeil effective size 3mn / (m + n + 1) covered 78 % at 10 runs
    against 3 with one arm nearly without spread, and variance estimates from the data vanish when every run of
    one arm beats every run of the other, common at 3 seeds (Pohar Perme and Manevski 2018).

    The bounds are NaN with fewer than two runs in an arm. `resamples` and `rng_seed` belonged to a bootstrap
    interval that did not cover at a few seeds; they are accepted and ignored.
    """
    runs = match_by_seed(values, baseline, seeds, baseline_seeds)
    a, b = runs.a, runs.b
    if len(a) == 0 or len(b) == 0:
        return Probability(math.nan, math.nan, math.nan)
    tol = tolerance(resolution, a, b)
    if runs.paired:
        differences, kind = a - b, SEEDS_WON
    else:
        differences, kind = (a[:, None] - b[None, :]).ravel(), RUNS_WON
    wins = float(np.sum(differences >= tol))
    ties = float(np.sum(np.abs(differences) < tol))
    share_won, share_won_or_tied = wins / len(differences), (wins + ties) / len(differences)
    estimate = (wins + ties / 2) / len(differences)
    trials = len(differences) if runs.paired else min(len(a), len(b))
    if len(a) < 2 or len(b) < 2:
        return Probability(estimate, math.nan, math.nan, kind, trials)
    low = _clopper_pearson(share_won * trials, trials, confidence)[0]
    high = _clopper_pearson(share_won_or_tied * trials, trials, confidence)[1]
    return Probability(estimate, low, high, kind, trials)


def t_test_power(effect: float, n: int, level: float, paired: bool) -> float:
    """Power of the two-sided t-test at `level` for a true difference of `effect` standard deviations, with n runs
    per arm: paired, a one-sample test of the n differences (effect in sd of a difference); unpaired, the
    equal-variance two-sample test (effect in the pooled sd), which Welch's test approaches with equal arms."""
    df = n - 1 if paired else 2 * n - 2
    noncentrality = effect * math.sqrt(n if paired else n / 2)
    critical = stats.t.ppf(1 - level / 2, df)
    upper_tail = stats.nct.sf(critical, df, noncentrality)
    # The far tail, against the effect's sign: scipy returns NaN where it is vanishingly small.
    lower_tail = np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality), nan=0.0)
    return float(upper_tail + lower_tail)


def detectable_difference(spread: float, n: int, level: float, paired: bool, power: float = POWER) -> float:
    """The smallest true difference (in the units of `spread`) that n runs per arm detect with `power` at `level`;
    NaN when there is no spread to scale by or fewer than 2 runs."""
    if not (spread > 0) or n < 2:
        return math.nan
    upper = 1.0
    while t_test_power(upper, n, level, paired) < power:  # bracket the root; far out the nct itself fails
        upper *= 2
    effect = optimize.brentq(lambda e: t_test_power(e, n, level, paired) - power, 0.0, upper)
    return effect * spread


def seeds_needed(delta: float, spread: float, level: float, paired: bool, power: float = POWER,
                 minimum: int = MIN_SEEDS, maximum: int = MAX_SEEDS) -> float:
    """Runs per arm (seeds) for the t-test at `level` to detect a true difference `delta` with `power`: at least
    `minimum`; inf when more than `maximum` would be needed (or delta is 0), NaN without a spread."""
    if not (spread > 0) or np.isnan(delta):
        return math.nan
    effect = abs(delta) / spread
    if effect == 0 or t_test_power(effect, maximum, level, paired) < power:
        return math.inf
    low, high = minimum, maximum  # power grows with n: bisect for the first n that reaches it
    if t_test_power(effect, low, level, paired) >= power:
        return low
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if t_test_power(effect, middle, level, paired) >= power else (middle, high)
    return high


def verdict(comparison: Comparison, adjusted_p: float | None = None, significance: float = SIGNIFICANCE) -> str:
    """'better', 'worse' or 'no significant difference at 5 %' (or why no test was possible), judged on the
    adjusted p-value when one is given."""
    level = f"{100 * significance:g} %"
    p_value = comparison.p_value if adjusted_p is None else adjusted_p
    if comparison.test == NO_SPREAD:
        return "not testable (the runs of an arm all gave the same accuracy)"
    if comparison.test == CONSTANT_DIFFERENCE:
        return "not testable (every seed gave the same difference)"
    if np.isnan(p_value):
        return "not tested (needs at least 2 finished runs in each arm)"
    if p_value < significance:
        return f"{'better' if comparison.delta > 0 else 'worse'} than the baseline at {level}"
    return f"no significant difference at {level}"


@dataclass(frozen=True)
class Judgement:
    """One comparison of a family judged with the others."""

    comparison: Comparison
    adjusted_p: float  # Holm over the family
    verdict: str  # on the adjusted p-value
    improvement: Probability
    level: float  # significance / family size: the strictest level of Holm's steps, which the power uses
    detectable: float  # smallest |Δ| the runs at hand detect with 80 % power at `level`
    seeds_needed: float  # runs per arm to detect the observed Δ with 80 % power at `level`
    family_size: int = 0  # comparisons of the family actually tested (the m of Holm's correction)
    family: Hashable = None  # the label of the family (judge_family's `groups`); None for one family of all
    # The interval of Δ at confidence 1 - significance / family_size (Bonferroni): every such interval of the
    # family holds its Δ at once with probability >= 1 - significance. One that excludes 0 implies a
    # better/worse verdict (Holm rejects whatever Bonferroni rejects); Holm's later steps can also call a Δ whose
    # interval still touches 0.
    simultaneous_low: float = math.nan
    simultaneous_high: float = math.nan
    simultaneous_confidence: float = math.nan


Arm = tuple[Sequence[float], Sequence | None]  # (values, seeds)


def judge_family(
    arms: Sequence[Arm] | Sequence[tuple[Arm, Arm]],
    baseline: Arm | None = None,
    significance: float = SIGNIFICANCE,
    *,
    groups: Sequence[Hashable] | None = None,
    resolution: float | Sequence[float | None] | None = None,
    advise: bool = True,
) -> list[Judgement]:
    """Judge comparisons as families of tests, with Holm-adjusted p-values, so that the chance of any false
    better/worse verdict in a family stays at `significance`.

    With `baseline`, every (values, seeds) arm is compared with it. Without, `arms` holds (arm, baseline) pairs,
    which may have different baselines: all of them form ONE family by default, so that the error rate holds
    over everything a summary states; `groups` (a label per comparison) makes a family of each label instead,
    e.g. one per baseline. `resolution` (one for all, or one per comparison) is the data's resolution (see
    compare_to_baseline). A family's size m counts only the comparisons actually tested; the seeds advice uses
    significance / m (Holm's first step), the level a real difference must clear when it is the only one, and
    each Δ gets a simultaneous interval at 1 - significance / m. `advise=False` skips the seeds advice (NaN),
    which no verdict uses, where only verdicts are wanted (simulations).
    """
    pairs = list(arms) if baseline is None else [(arm, baseline) for arm in arms]
    if groups is None:
        labels = [None] * len(pairs)
    else:
        labels = list(groups)
        if len(labels) != len(pairs):
            raise ValueError(f"{len(labels)} group labels for {len(pairs)} comparisons")
    if resolution is None or np.isscalar(resolution):
        resolutions = [resolution] * len(pairs)
    else:
        resolutions = list(resolution)
        if len(resolutions) != len(pairs):
            raise ValueError(f"{len(resolutions)} resolutions for {len(pairs)} comparisons")
    comparisons = [compare_to_baseline(arm[0], base[0], arm[1], base[1], resolution=r)
                   for (arm, base), r in zip(pairs, resolutions)]
    improvements = [probability_of_improvement(arm[0], base[0], arm[1], base[1], resolution=r)
                    for (arm, base), r in zip(pairs, resolutions)]
    p_values = np.array([c.p_value for c in comparisons], dtype=float)
    adjusted = np.full(len(pairs), np.nan)
    sizes = np.zeros(len(pairs), dtype=int)
    for label in dict.fromkeys(labels):
        members = [i for i, other in enumerate(labels) if other == label]
        adjusted[members] = holm(p_values[members])
        sizes[members] = int(np.sum(~np.isnan(p_values[members])))
    judgements = []
    for c, q, improvement, size, label in zip(comparisons, adjusted, improvements, sizes, labels):
        level = significance / max(int(size), 1)
        low, high = c.interval(1 - level) if not np.isnan(c.p_value) else (math.nan, math.nan)
        judgements.append(Judgement(
            comparison=c,
            adjusted_p=float(q),
            verdict=verdict(c, q, significance),
            improvement=improvement,
            level=level,
            detectable=detectable_difference(c.spread, c.n, level, c.paired) if advise else math.nan,
            seeds_needed=seeds_needed(c.delta, c.spread, level, c.paired) if advise else math.nan,
            family_size=int(size),
            family=label,
            simultaneous_low=low,
            simultaneous_high=high,
            simultaneous_confidence=1 - level,
        ))
    return judgements
