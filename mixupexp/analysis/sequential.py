"""The decision core of a sequential sweep: seeds are added round by round until every comparison is settled.

A sweep compares K configurations with one baseline; every run is done once per seed, and the runs of a
configuration and of the baseline with the same seed are paired: d_i = acc_config(seed i) - acc_baseline(seed i),
in accuracy points. The fixed-n paired t-test is only valid when n is chosen before the data are seen; looking
after every round and stopping once it is significant inflates its error far beyond the nominal level (see
`sequential_simulation`). This module uses an *anytime-valid* test instead, so that the sweep may look after
every round and stop a comparison as soon as it is settled.

One unit per concept, each a plain function of numbers or arrays that the tests and the simulations call:

- `log_e_point(t, n, effect)`: the e-value (in logs) of n paired differences against H0: mean = Delta0 -- the
  safe t-test against a point alternative, the standardised effect at +-`effect` (the default, `EValue()`);
- `log_bayes_factor(t, n, g)`: the same for the Gaussian-mixture sequential t-test (a Bayes factor with a N(0, g)
  prior on the standardised effect); both use the right-Haar prior 1/sigma on the scale and are functions of n
  and the t statistic only;
- `critical_t_point(n, level, effect)`, `critical_t(n, level, g)` and `confidence_sequence(...)`: the set of
  Delta0 that the test does not reject at `level`, mean +- t* s / sqrt(n), valid simultaneously over all n;
- `EValue`: which of the two a sweep uses;
- `is_degenerate(...)` / `no_spread(...)`: differences without spread beyond the accuracy grid, which the
  t-test cannot judge;
- `look(...)`: the decision rule of one comparison at one look (vectorised, shared with the simulations);
- `decide(...)` / `decide_sweep(...)`: the frozen `Decision` per configuration, replayed from the finished
  runs round by round;
- `round_bounds(...)`, `next_seeds(...)`, `max_runs(...)`: which seeds to run next, and the budget.

References:
- T. L. Lai (1976), "On confidence sequences", Ann. Statist. 4(2): 265-280 (the mixture t confidence sequence).
- P. Grunwald, R. de Heide, W. Koolen (2024), "Safe testing", J. R. Stat. Soc. B 86(5): 1091-1128 (e-values,
  and the safe t-test as the GROW e-value for a point alternative).
- M. F. Perez-Ortiz, T. Lardy, R. de Heide, P. D. Grunwald (2024), "E-statistics, group invariance and
  anytime-valid testing", Ann. Statist. 52(4): 1410-1432 (the right-Haar Bayes factor as the likelihood ratio
  of the maximal invariant, a test martingale; its growth optimality).
- A. Ly, R. Turner, J. ter Schure, M. Perez-Ortiz, P. Grunwald, safestats (R package): safeTTest, the same
  right-Haar construction of a t-test e-value, with its own prior on the effect.
- M. Lindon, C. Sanden, V. Shirikian (2022), "Rapid regression detection in software deployments through
  sequential testing", KDD 2022 (the same closed form for the sequential t-test).
- J. Ville (1939), Etude critique de la notion de collectif (Ville's inequality).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

# ---- defaults ---------------------------------------------------------------------------------------------

ALPHA = 0.05
"""Family level: the chance of any wrong verdict (better, worse or within) in the whole sweep, at any time."""

SMALLEST_EFFECT = 1.0
"""delta, in accuracy points: a CS inside (-delta, +delta) settles a comparison as "no difference larger than
delta". A point of test accuracy is the order of mixup's published gains on CIFAR-10 (Zhang et al. 2018, "mixup:
Beyond empirical risk minimization"), and less than that is not worth a change of configuration here. "Within"
needs the CS half-width t*(n) s / sqrt(n) below delta - |mean|: at 20 pairs t* = 3.60 for K = 3 (3.96 for K = 8)
with the default e-value, so it is reachable only when the sd of a paired difference is below about 1.24 delta
(1.13 delta). With noisier
runs the comparisons of equal configurations end "not settled", not "within"; raise delta
(hydra.sweeper.smallest_effect) when a larger difference may count as none."""

POINT = "point"
MIXTURE = "mixture"

DESIGN_EFFECT = 1.0
"""The default e-value's alternative: a standardised effect |mu - Delta0| / sigma of 1, one sd of a paired
difference -- the scale the mixture's g = 1 puts its prior's sd at, and the effect a budget of about 10-20 seeds
is there to find (a fixed paired t-test at 5 % / 3 needs 13 pairs for 75 % power at 1 sd).

Why the point alternative and not the mixture (`sequential_simulation --e-value point|mixture`, K = 3, 3 seeds
then 2 a round up to 20, 4000 sweeps): with paired-difference sd 1.41 points (on a 1/500 grid) it has power
82 % at 1 sd against the mixture's 72 % (g = 1), with slightly fewer runs; with sd 0.85 it uses 9 % fewer runs
on equal configurations (89 % of them end within +-1 against 79 %) and 8 % fewer at 2 sd; with sd 0.42 the two
use the same runs (36 of 80). The family error stays far below alpha (K = 8: 2.1 % against 0.9 %). Its
half-width does not shrink to 0 as n grows (t* s / sqrt(n) tends to sigma * effect / 2), which matters only far
beyond a sweep's 20 seeds; alternatives at 0.75 or 1.25 sd trade power at 1 sd for runs at 0.42 sd."""

PRIOR_SCALE = 1.0
"""g, the variance of the N(0, g) prior on the standardised effect (mu - Delta0) / sigma.

g = 1 puts the prior's sd at one sd of a paired difference, so effects of 1-2 sd -- the ones a sweep of up to
20 seeds can find at all -- are typical draws of the prior, not its tails. A smaller g tunes the mixture to
smaller effects and is slow in the first rounds: the largest e-value n pairs can reach is (1 + n g)^((n-1)/2),
which must exceed K / alpha before anything is rejected; a larger g finds large effects a little sooner but pays
the factor (1 + n g)^(-1/2) on moderate ones. Simulated with `sequential_simulation.runs_saved` (K = 3,
alpha = 0.05, 3 seeds then 2 a round up to 20, paired-difference sd 1.41 points on a 1/500 grid, 2000 sweeps)
for g = 0.25 / 0.5 / 1 / 2 / 4: power at 1 sd 67.6 / 74.0 / 75.0 / 73.3 / 70.6 %; mean seeds to find a 2 sd
effect 11.7 / 10.1 / 9.1 / 8.5 / 8.3. g = 1 has the best power at 1 sd and is within a seed of the fastest at
2 sd."""

MIN_SEEDS = 3
SEEDS_PER_ROUND = 2
MAX_SEEDS = 20

ANYTIME = "anytime"
"""The anytime-valid design: the safe t-test's confidence sequence, valid under any change of plan."""
PLANNED = "planned"
"""Repeated confidence intervals for the sweep's own schedule of looks (analysis/planned.py): narrower, valid for
that schedule only."""
DESIGNS = (ANYTIME, PLANNED)
DESIGN = PLANNED
"""The sweep's default (hydra.sweeper.design). Simulated through this rule (`python -m mixupexp.analysis.operating
--sims 4000`, docs/statistics.md: paired-difference sd 0.42 / 0.85 / 1.41 points, K = 1 / 3 / 8, true effects 0 to
2 delta), the planned design used fewer runs on average than the anytime one in all 45 rows (up to 40 % fewer at
2 delta, sd 0.42), with a family error of at most 5.00 % (K = 1, sd 1.41, no effect). Its price: a sweep started
again must keep its schedule (runs/sequential_design.py, check_schedule). decide_sweep's own default stays the
anytime e-value, whose numbers the decision core's tests work by hand."""

# Keys of the settings as the user types them, for the one-line errors.
KEY_MIN_SEEDS = "hydra.sweeper.min_seeds"
KEY_MAX_SEEDS = "hydra.sweeper.max_seeds"
KEY_SEEDS_PER_ROUND = "hydra.sweeper.seeds_per_round"
KEY_SMALLEST_EFFECT = "hydra.sweeper.smallest_effect"
KEY_ALPHA = "hydra.sweeper.alpha"
KEY_DESIGN = "hydra.sweeper.design"

# Verdicts.
OPEN = "open"
BETTER = "better"
WORSE = "worse"
WITHIN = "within"
NOT_SETTLED = "not settled"
SETTLED = (BETTER, WORSE, WITHIN, NOT_SETTLED)
_CODES = (OPEN, BETTER, WORSE, WITHIN, NOT_SETTLED)  # look() returns indices into this tuple

# Differences whose sd is below this share of the grid step carry no spread beyond rounding (see is_degenerate).
DEGENERATE_SHARE = 0.5
# Without a grid: the float noise of a difference of two percentages (8e-15 for 352/500*100 - 350/500*100).
FLOAT_TOLERANCE = 1e-9
# Pairs that must all be exactly 0 for a configuration to count as identical to its baseline ("within"). On a
# 1/500 grid with a paired-difference sd of 1.41 points a single pair is 0 by chance with probability 0.06, so
# three by chance 2e-4, below the 5 %/8 a comparison may spend; the simulations judge with this rule.
IDENTICAL_PAIRS = 3


# ---- settings ---------------------------------------------------------------------------------------------


def check_settings(
    alpha: float = ALPHA,
    smallest_effect: float = SMALLEST_EFFECT,
    min_seeds: int = MIN_SEEDS,
    max_seeds: int = MAX_SEEDS,
    seeds_per_round: int = SEEDS_PER_ROUND,
) -> None:
    """Raise ValueError with one line naming the key as the user types it, for the first bad setting."""
    if not (0 < alpha < 1):
        raise ValueError(f"{KEY_ALPHA}={alpha} must be in (0, 1)")
    if min_seeds < 2:
        raise ValueError(f"{KEY_MIN_SEEDS}={min_seeds} must be >= 2 (one pair has no spread to test with)")
    if max_seeds < min_seeds:
        raise ValueError(f"{KEY_MAX_SEEDS}={max_seeds} must be >= {KEY_MIN_SEEDS}={min_seeds}")
    if seeds_per_round < 1:
        raise ValueError(f"{KEY_SEEDS_PER_ROUND}={seeds_per_round} must be >= 1")
    if not (smallest_effect > 0):
        raise ValueError(f"{KEY_SMALLEST_EFFECT}={smallest_effect} must be > 0 (accuracy points)")


def check_design(design: str) -> None:
    """Raise ValueError with one line naming the key, for a design that is not one of DESIGNS."""
    if design not in DESIGNS:
        raise ValueError(f"{KEY_DESIGN}={design} must be {' or '.join(DESIGNS)}")


def design_test(design: str, looks: Sequence[int], e_value: "EValue | None" = None):
    """What `look` judges a comparison by: the e-value for the anytime design (`e_value`, default the safe
    t-test), the planned boundaries of the schedule `looks` (pairs at each round) for the planned one."""
    check_design(design)
    if design == PLANNED:
        from mixupexp.analysis.planned import Planned

        return Planned(tuple(int(n) for n in looks))
    return DEFAULT_E_VALUE if e_value is None else e_value


# ---- the e-value and the confidence sequence ---------------------------------------------------------------


def t_statistic(differences: Sequence[float], null: float = 0.0) -> float:
    """sqrt(n) (mean - null) / s of the paired differences (s with ddof = 1); NaN for n < 2, +-inf for s = 0."""
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        return math.nan
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.divide(math.sqrt(n) * (mean - null), sd))


def log_bayes_factor(t, n, g: float = PRIOR_SCALE):
    """log BF_n of the Gaussian-mixture sequential t-test, from the t statistic and the number of pairs n.

    Model: d_1, d_2, ... i.i.d. N(mu, sigma^2). H0: mu = Delta0, against H1: (mu - Delta0) / sigma ~ N(0, g);
    under both, the right-Haar prior 1/sigma on sigma. With x_i = d_i - Delta0, S = sum x_i^2 = s^2 (nu + t^2),
    nu = n - 1, integrating the effect out gives exp(-(S - n^2 xbar^2 g / (1 + n g)) / (2 sigma^2)) (1 + n g)^(-1/2)
    and sigma out a power -n/2 of the exponent's numerator, so

        BF_n = (1 + n g)^(-1/2) [(1 + t^2 / nu) / (1 + t^2 / (nu (1 + n g)))]^(n/2),

    a function of n and t only. For n = 1 it is exactly 1 (no evidence without a spread): log BF = 0 for n < 2.
    It is increasing in |t|, and bounded: BF_n < (1 + n g)^((n-1)/2) whatever the data.

    What is guaranteed. BF_n is the likelihood ratio of the maximal invariant of the group x -> c x (c != 0),
    M_n = (x_2 / x_1, ..., x_n / x_1): the data with their scale and overall sign forgotten, under which H0 and
    the symmetric alternative are both invariant (Perez-Ortiz et al. 2024; BF_n depends on M_n only through
    |t_n|). Hence, under H0 and for every sigma > 0, (BF_n) is a nonnegative martingale with mean 1 in the
    filtration generated by M_2, M_3, ... -- a test martingale in that filtration, which is coarser than the
    data's own; no claim is made about the data's own filtration. By
    Ville's inequality, P_H0(there is an n with BF_n >= 1/alpha) <= alpha. So "reject the first time
    BF_n >= 1/alpha" keeps its type-I error at alpha however the sweep decides when to look and when to stop --
    even by a rule that uses the scale of the data or other comparisons -- because its error event lies inside
    the crossing event. What is not claimed: that E[BF_tau] <= 1 at any stopping time tau of the full data
    (so do not multiply these e-values across comparisons stopped that way), nor anything when the differences
    are not i.i.d. normal (accuracies on a k/N grid, heavy tails): the simulations check the rounded case.

    Works in logs (log1p) so that large n or |t| do not overflow; t and n may be arrays (broadcast).
    """
    t = np.asarray(t, dtype=float)
    n = np.asarray(n, dtype=float)
    nu = np.maximum(n - 1.0, 1.0)  # guarded: the n < 2 cases are replaced below
    t2 = np.square(t)
    shrink = np.log1p(n * g)
    with np.errstate(invalid="ignore", over="ignore"):
        log_bf = -0.5 * shrink + 0.5 * n * (np.log1p(t2 / nu) - np.log1p(t2 / (nu * (1.0 + n * g))))
        # |t| = inf (no spread): the bound (n - 1)/2 log(1 + n g), the limit of the expression.
        log_bf = np.where(np.isinf(t2), 0.5 * (n - 1.0) * shrink, log_bf)
    log_bf = np.where(n < 2, 0.0, log_bf)
    return log_bf if log_bf.ndim else float(log_bf)


def log_e_value(differences: Sequence[float], null: float = 0.0, g: float = PRIOR_SCALE) -> float:
    """log of the Gaussian mixture's e-value of the paired differences against H0: mean = null (log_bayes_factor
    of their t)."""
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return 0.0
    return float(log_bayes_factor(t_statistic(d, null), len(d), g))


def critical_t(n, level: float, g: float = PRIOR_SCALE):
    """t* > 0 with BF_n(t*) = 1/level: the test rejects at `level` exactly when |t| >= t*; inf when no data of
    n pairs can reach 1/level (n < 2, or (1 + n g)^((n-1)/2) <= 1/level).

    Closed form: with c = log(1/level) + log(1 + n g)/2, R = exp(2c/n) and G = 1 + n g, the equation
    (1 + v) / (1 + v/G) = R in v = t^2/nu gives v = (R - 1) / (1 - R/G), which needs R < G.
    """
    n = np.asarray(n, dtype=float)
    nu = np.maximum(n - 1.0, 1.0)
    safe_n = np.maximum(n, 2.0)
    log_g = np.log1p(safe_n * g)
    exponent = 2.0 * (math.log(1.0 / level) + 0.5 * log_g) / safe_n  # log R
    reachable = (n >= 2) & (exponent < log_g)
    with np.errstate(invalid="ignore", divide="ignore"):
        v = np.expm1(exponent) / -np.expm1(exponent - log_g)
        t_star = np.where(reachable, np.sqrt(nu * v), np.inf)
    return t_star if t_star.ndim else float(t_star)


def confidence_sequence(differences: Sequence[float], level: float, g: float = PRIOR_SCALE) -> tuple[float, float]:
    """(low, high): every Delta0 with BF_n(Delta0) < 1/level, i.e. mean +- t* s / sqrt(n), for the Gaussian
    mixture (`look` gives the interval of any `EValue`).

    P(the true mean ever leaves the interval, at any n) <= level (Lai 1976; Ville's inequality applied at the true
    mean), so the interval may be read after every seed. n < 2 (or a level no n pairs can reach): (-inf, inf).
    """
    d = np.asarray(differences, dtype=float)
    n = len(d)
    if n < 2:
        return -math.inf, math.inf
    half = critical_t(n, level, g) * float(d.std(ddof=1)) / math.sqrt(n)
    if math.isnan(half):  # inf * 0: no spread and no reachable boundary
        return -math.inf, math.inf
    mean = float(d.mean())
    return mean - half, mean + half


# ---- the point alternative: the safe t-test -------------------------------------------------------------------


def _log_hyp1f1(a, x):
    """log 1F1(a; 1/2; x) for a > 0, x >= 0 (arrays, broadcast). Where 1F1 overflows a double (x beyond about
    700, n in the thousands), its series, all of whose terms are positive, is summed in logs around its peak."""
    from scipy import special

    a, x = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(x, dtype=float))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        out = np.atleast_1d(np.log(special.hyp1f1(a, 0.5, x))).copy()
    flat_a, flat_x = np.atleast_1d(a), np.atleast_1d(x)
    for i in np.flatnonzero(~np.isfinite(out)):
        ai, xi = flat_a[i], flat_x[i]
        peak = 0.5 * (xi + math.sqrt(xi * xi + 4.0 * ai * xi))  # where term k+1 / term k = 1
        k = np.arange(0, int(peak + 40.0 * math.sqrt(peak + 1.0) + 50.0), dtype=float)
        log_terms = (special.gammaln(ai + k) - special.gammaln(ai) - special.gammaln(0.5 + k)
                     + special.gammaln(0.5) + k * math.log(xi) - special.gammaln(k + 1.0))
        top = log_terms.max()
        out[i] = top + math.log(np.exp(log_terms - top).sum())
    return out.reshape(a.shape) if a.ndim else float(out[0])


def log_e_point(t, n, effect: float = DESIGN_EFFECT):
    """log E_n of the safe t-test of H0: mean = Delta0 against the point alternative (mu - Delta0)/sigma = +-effect.

    E_n is the likelihood ratio of the t statistic, the noncentral-t density (n - 1 degrees of freedom,
    noncentrality effect sqrt(n)) over the central-t density, averaged over the two signs of the effect
    (scipy.stats.nct; Grunwald, de Heide, Koolen 2024; Perez-Ortiz et al. 2024). Averaged over the sign, the odd
    terms of the noncentral density cancel and it has a closed form: with y^2 = t^2 / (nu + t^2), nu = n - 1 and
    z = n effect^2 / 2,

        E_n = exp(-z) 1F1(n/2; 1/2; z y^2),

    increasing in |t| from exp(-z) at t = 0 to its bound exp(-z) 1F1(n/2; 1/2; z) at |t| = inf (no spread). For
    n = 1 it is exactly 1. What is guaranteed is what `log_bayes_factor` says of the mixture: E_n is the
    likelihood ratio of the maximal invariant of x -> c x (the alternative at +-effect is one point of that
    invariant's model), a test martingale under H0 for every sigma in the invariant's filtration, so by Ville's
    inequality P_H0(E_n >= 1/alpha for some n) <= alpha. t and n may be arrays (broadcast).
    """
    t = np.asarray(t, dtype=float)
    n = np.asarray(n, dtype=float)
    nu = np.maximum(n - 1.0, 1.0)
    t2 = np.square(t)
    with np.errstate(invalid="ignore"):
        y2 = np.where(np.isinf(t2), 1.0, t2 / (nu + np.where(np.isinf(t2), 0.0, t2)))
    z = 0.5 * n * effect * effect
    log_e = _log_hyp1f1(0.5 * np.maximum(n, 1.0), z * y2) - z
    log_e = np.where(n < 2, 0.0, log_e)
    return log_e if log_e.ndim else float(log_e)


def _critical_t_point(n: int, level: float, effect: float) -> float:
    from scipy import optimize

    if n < 2:
        return math.inf
    threshold = math.log(1.0 / level)
    gap = lambda y2: float(log_e_point(math.sqrt((n - 1) * y2 / (1.0 - y2)) if y2 < 1 else math.inf, n, effect)) \
        - threshold
    if gap(1.0) <= 0:
        return math.inf
    if gap(0.0) >= 0:
        return 0.0
    y2 = optimize.brentq(gap, 0.0, 1.0, xtol=1e-15, rtol=1e-14)
    return math.sqrt((n - 1) * y2 / (1.0 - y2)) if y2 < 1 else math.inf


_CRITICAL_POINT: dict[tuple[int, float, float], float] = {}


def critical_t_point(n, level: float, effect: float = DESIGN_EFFECT):
    """t* > 0 with E_n(t*) = 1/level for the point alternative: the test rejects at `level` exactly when |t| >= t*;
    inf when no data of n pairs can reach 1/level (n < 2, or the bound at |t| = inf is below it). Found by root
    finding in y^2 = t^2 / (nu + t^2), where E_n is increasing; n may be an array (each distinct n solved once)."""
    n = np.asarray(n, dtype=float)
    flat = n.ravel()
    out = np.empty_like(flat)
    for i, value in enumerate(flat):
        key = (int(value), float(level), float(effect))
        if key not in _CRITICAL_POINT:
            _CRITICAL_POINT[key] = _critical_t_point(*key)
        out[i] = _CRITICAL_POINT[key]
    out = out.reshape(n.shape)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class EValue:
    """The e-value a sweep's comparisons use: the safe t-test against +-`scale` sd (POINT, the default) or the
    Gaussian mixture with prior variance `scale` (MIXTURE)."""

    kind: str = POINT
    scale: float = DESIGN_EFFECT

    def __post_init__(self):
        if self.kind not in (POINT, MIXTURE):
            raise ValueError(f"e-value {self.kind!r} must be {POINT!r} or {MIXTURE!r}")
        if not self.scale > 0:
            raise ValueError(f"the e-value's scale {self.scale} must be > 0")

    def log_e(self, t, n):
        return (log_e_point if self.kind == POINT else log_bayes_factor)(t, n, self.scale)

    def critical_t(self, n, level: float):
        return (critical_t_point if self.kind == POINT else critical_t)(n, level, self.scale)

    @property
    def text(self) -> str:
        if self.kind == POINT:
            return f"safe t-test against a standardised effect of ±{self.scale:g} sd of a paired difference"
        return f"Gaussian-mixture t-test, prior variance g = {self.scale:g} on the standardised effect"


DEFAULT_E_VALUE = EValue()


# ---- degenerate data ---------------------------------------------------------------------------------------


def no_spread(sd, mean, resolution: float | None = None):
    """True (elementwise) where an sd of paired differences counts as none: below half the grid step
    `resolution`, or without a grid below float noise relative to the differences' size |mean| + sd."""
    sd, mean = np.asarray(sd, dtype=float), np.asarray(mean, dtype=float)
    if resolution is None:
        below = FLOAT_TOLERANCE * np.maximum(1.0, np.abs(mean) + np.nan_to_num(sd))
    else:
        below = DEGENERATE_SHARE * resolution
    return sd < below


def is_degenerate(differences: Sequence[float], resolution: float | None = None) -> bool:
    """True when the differences have no spread that the t-test could scale by.

    Accuracies are k/N * 100, so a difference lives on a grid of step `resolution` = 100/N points. An sd below
    half a step is spread no larger than the rounding itself (a difference of two rounded accuracies has rounding
    sd 100/N/sqrt(6) = 0.41 steps): the t statistic would be huge and mean nothing -- e.g. 0.4 points at every
    seed, computed as 352/500*100 - 350/500*100, has sd 8e-15, not 0, and t = 1e14. Such a comparison is not
    testable: it stays open and at the budget ends not settled. With n >= 5 the rule also catches "all but one
    seed gave the same difference" (that sd is step/sqrt(n)). resolution None: only float noise counts as none.
    """
    d = np.asarray(differences, dtype=float)
    if len(d) < 2:
        return False
    return bool(no_spread(d.std(ddof=1), d.mean(), resolution))


# ---- the decision rule -------------------------------------------------------------------------------------


def look(n, mean, sd, *, level: float, smallest_effect: float = SMALLEST_EFFECT, at_budget=False,
         e_value: EValue = DEFAULT_E_VALUE, resolution: float | None = None):
    """The rule of one comparison at one look, on arrays (broadcast): returns (code, low, high, log_e, testable)
    with code an index into (OPEN, BETTER, WORSE, WITHIN, NOT_SETTLED).

    From the n pairs' mean and sd (ddof = 1): the CS at `level` is mean +- t* sd / sqrt(n); the comparison is
    settled as BETTER / WORSE when the CS excludes 0 (BF at Delta0 = 0 reached 1/level), else WITHIN when the
    CS lies inside (-smallest_effect, +smallest_effect), else NOT_SETTLED when `at_budget`, else OPEN. Better /
    worse come first (a CS inside (0, delta) says "better, by less than delta"). Degenerate data (see
    is_degenerate) are not testable: OPEN, or NOT_SETTLED at the budget, with CS (-inf, inf) and log_e 0 --
    but differences that are all exactly 0 at IDENTICAL_PAIRS or more pairs are WITHIN, with CS [0, 0].
    """
    n = np.asarray(n, dtype=float)
    mean = np.asarray(mean, dtype=float)
    sd = np.asarray(sd, dtype=float)
    at_budget = np.asarray(at_budget, dtype=bool)
    testable = (n >= 2) & ~no_spread(sd, mean, resolution)
    with np.errstate(invalid="ignore", divide="ignore"):
        root_n = np.sqrt(np.maximum(n, 1.0))
        t = np.where(testable, mean * root_n / np.where(sd > 0, sd, 1.0), 0.0)
        log_e = np.where(testable, e_value.log_e(t, n), 0.0)
        half = np.where(testable, e_value.critical_t(n, level) * sd / root_n, np.inf)
    low = np.where(np.isfinite(half), mean - half, -np.inf)
    high = np.where(np.isfinite(half), mean + half, np.inf)
    code = np.where(at_budget, 4, 0)
    # Runs identical to the baseline's at every one of IDENTICAL_PAIRS or more seeds (a configuration that
    # trains exactly like it): no spread to test with, and no difference either -- within, with [0, 0].
    identical = (n >= IDENTICAL_PAIRS) & (np.abs(mean) + np.nan_to_num(sd) <= FLOAT_TOLERANCE) \
        & (smallest_effect > 0)
    low, high = np.where(identical, 0.0, low), np.where(identical, 0.0, high)
    code = np.where(identical, 3, code)
    code = np.where(testable & (high < smallest_effect) & (low > -smallest_effect), 3, code)
    code = np.where(testable & (high < 0), 2, code)
    code = np.where(testable & (low > 0), 1, code)
    return code, low, high, log_e, testable


@dataclass(frozen=True)
class Decision:
    """One configuration against the baseline after a round (frozen from the round it settled)."""

    verdict: str  # OPEN, BETTER, WORSE, WITHIN or NOT_SETTLED
    n: int  # pairs (seeds where both runs finished)
    mean: float  # mean difference, configuration - baseline, points
    low: float  # the confidence sequence at alpha / K
    high: float
    log_e: float  # log e-value against "no difference" (0 when not testable)
    round: int  # the look these numbers come from (-1: none yet)
    settled_round: int | None = None  # the round it settled, None while open
    testable: bool = True
    smallest_effect: float = SMALLEST_EFFECT

    @property
    def settled(self) -> bool:
        return self.verdict in SETTLED

    @property
    def text(self) -> str:
        """'better', 'worse', 'within ±1 points', 'not settled at 20 seeds' or 'open'."""
        if self.verdict == WITHIN:
            return f"within ±{self.smallest_effect:g} points"
        if self.verdict == NOT_SETTLED:
            return f"not settled at {self.n} seeds"
        return self.verdict


def decide(differences: Sequence[float], *, level: float, smallest_effect: float = SMALLEST_EFFECT,
           at_budget: bool = False, round_index: int = 0, e_value: EValue = DEFAULT_E_VALUE,
           resolution: float | None = None) -> Decision:
    """The Decision of one comparison from its paired differences so far (NaNs: failed runs, dropped), at the
    comparison's own level (alpha / K in a family of K)."""
    d = np.asarray(differences, dtype=float)
    d = d[~np.isnan(d)]
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    code, low, high, log_e, testable = look(n, mean if n else 0.0, sd, level=level,
                                            smallest_effect=smallest_effect, at_budget=at_budget,
                                            e_value=e_value, resolution=resolution)
    verdict = _CODES[int(code)]
    return Decision(verdict, n, mean, float(low), float(high), float(log_e), round_index,
                    round_index if verdict in SETTLED else None, bool(testable), smallest_effect)


def round_bounds(min_seeds: int = MIN_SEEDS, seeds_per_round: int = SEEDS_PER_ROUND,
                 max_seeds: int = MAX_SEEDS) -> list[int]:
    """Seeds run by the end of each round: round 0 runs seeds 0..min_seeds-1, each later round seeds_per_round
    more, capped at max_seeds; e.g. [3, 5, 7, ..., 19, 20] for the defaults. Round r runs seeds
    bounds[r-1]..bounds[r]-1."""
    bounds = [min_seeds]
    while bounds[-1] < max_seeds:
        bounds.append(min(bounds[-1] + seeds_per_round, max_seeds))
    return bounds


def paired_differences(config: Mapping[int, float], baseline: Mapping[int, float], below: int) -> np.ndarray:
    """d_i for the seeds i < below where both runs finished (NaN or absent: failed or not run), by seed."""
    seeds = sorted(s for s in config if s < below and s in baseline)
    d = np.array([config[s] - baseline[s] for s in seeds], dtype=float)
    return d[~np.isnan(d)]


def decide_sweep(results: Mapping[str, Mapping[int, float]], baseline: str, *, alpha: float = ALPHA,
                 smallest_effect: float = SMALLEST_EFFECT, min_seeds: int = MIN_SEEDS,
                 seeds_per_round: int = SEEDS_PER_ROUND, max_seeds: int = MAX_SEEDS,
                 e_value: EValue = DEFAULT_E_VALUE, resolution: float | None = None,
                 design: str = ANYTIME) -> dict[str, Decision]:
    """Every configuration's Decision, replayed round by round from the finished runs.

    results: {name: {seed: accuracy}} for the baseline and every one of the K configurations (an empty mapping
    before its first run: K counts the names); a failed run is NaN (it was run, it drops out of the pairs), a
    seed not run yet is absent. Each comparison is judged at alpha / K:
    Bonferroni, a union bound that needs no assumption on the dependence between the comparisons (they share
    the baseline's runs) and stays valid under optional stopping, because each comparison's error event is
    inside its own CS-miss event, P <= alpha / K each, over all looks. That covers every kind of wrong verdict:
    better/worse when the true difference is 0 or of the other sign, and within when it is delta or more.

    Round r is judged once every comparison still open and the baseline ran all seeds below round_bounds()[r];
    a comparison settled at round r stops there and its Decision is frozen: later runs (of a round already
    scheduled, or of the baseline for other comparisons) are ignored. Stopping is the simplest valid choice;
    the CS would stay valid if it went on, but a verdict that could flip is no verdict. A comparison still open
    at the last round (seeds up to max_seeds run; failed runs may leave fewer pairs) ends NOT_SETTLED.
    The decisions depend only on the finished runs, so a restarted sweep takes the same ones. `design`
    PLANNED judges by the boundaries planned for these rounds and the level alpha / K instead of `e_value`.
    """
    check_settings(alpha, smallest_effect, min_seeds, max_seeds, seeds_per_round)
    configs = [name for name in results if name != baseline]
    level = alpha / max(len(configs), 1)
    base = results.get(baseline, {})
    decisions = {name: Decision(OPEN, 0, math.nan, -math.inf, math.inf, 0.0, -1, None, True, smallest_effect)
                 for name in configs}
    bounds = round_bounds(min_seeds, seeds_per_round, max_seeds)
    e_value = design_test(design, bounds, e_value)
    for r, below in enumerate(bounds):
        still_open = [name for name in configs if not decisions[name].settled]
        if not still_open or not all(_ran_all(results.get(name, {}), below) for name in [*still_open, baseline]):
            break
        for name in still_open:
            decisions[name] = decide(paired_differences(results[name], base, below), level=level,
                                     smallest_effect=smallest_effect, at_budget=r == len(bounds) - 1, round_index=r,
                                     e_value=e_value, resolution=resolution)
    return decisions


def _ran_all(runs: Mapping[int, float] | Collection[int], below: int) -> bool:
    return all(s in runs for s in range(below))


def next_seeds(configs: Sequence[str], baseline: str, decisions: Mapping[str, Decision],
               seeds_run: Mapping[str, Collection[int]], *, min_seeds: int = MIN_SEEDS,
               seeds_per_round: int = SEEDS_PER_ROUND, max_seeds: int = MAX_SEEDS) -> dict[str, list[int]]:
    """{name: seeds to run next} for the open configurations and the baseline; {} when every one is settled.

    The first round (nothing run) is seeds 0..min_seeds-1 for every configuration and the baseline; after that
    the next seeds_per_round seeds for the configurations still open (missing or OPEN in `decisions`) and the
    baseline, never beyond max_seeds. A round cut short (a restart) is finished first: the seeds returned are
    those of the first round some open configuration or the baseline has not fully run. seeds_run counts
    finished and failed runs alike (a failed run is not re-run; its pair drops out).
    """
    check_settings(ALPHA, SMALLEST_EFFECT, min_seeds, max_seeds, seeds_per_round)
    still_open = [name for name in configs if name not in decisions or not decisions[name].settled]
    if not still_open:
        return {}
    arms = [*still_open, baseline]
    for below in round_bounds(min_seeds, seeds_per_round, max_seeds):
        missing = {name: [s for s in range(below) if s not in seeds_run.get(name, ())] for name in arms}
        missing = {name: seeds for name, seeds in missing.items() if seeds}
        if missing:
            return missing
    return {}


def max_runs(k: int, max_seeds: int = MAX_SEEDS) -> int:
    """Upper bound of the runs of a sweep of k configurations and one baseline (for a dry run)."""
    return (k + 1) * max_seeds
