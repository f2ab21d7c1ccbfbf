"""What a stopped comparison's Δ estimates: the mean at the stop, and an estimate conditioned on its verdict.

The mean of the pairs at the round a comparison stopped is biased: the sweep stops a comparison when its data
look settled, so the mean read at a "better" stop is one of the lucky ones. Simulated (K = 3, the defaults,
paired-difference sd 1.41 points; `python -m mixupexp.analysis.guarantee_simulation`, docs/statistics.md), the
Δ of "better after n seeds" overstated a true effect of 0.5 sd of a paired difference by 74 % and one of 1 sd by
12 %. Beside it the summary prints the *conditional* estimate: the effect mu~ whose expected mean at the stop,
given that the comparison ended with the same verdict, equals the mean observed, E_mu~[mean at stop | that
verdict] = mean -- a conditional moment estimate (J. F. Troendle, K. F. Yu (1999), "Conditional estimation
following a group sequential clinical trial", Commun. Statist. Theory Methods 28(7): 1617-1634), which takes
out the bias that reading the mean only after that verdict puts in. Simulated the same way, its bias is -4 % of
the effect at 1 sd and -1 % at 2 sd, but still +38 % at 0.5 sd, where a "better" verdict is rare (18 %) and
comes from the far tail, and the sd read at such a stop, which the simulation plugs in, is small too.

The expectation is computed by simulating the design -- the same rounds, level, smallest effect and e-value,
judged by `sequential.look` -- with paired differences N(mu, sd^2), sd the observed sd (its plug-in), at a
reference effect mu0; the expectation at any other mu is the same stops reweighted by their likelihood ratio,
for a stop after n pairs with mean m exp(((mu - mu0) n m - n (mu^2 - mu0^2) / 2) / sd^2). That is smooth and
increasing in mu (an exponential tilt), so its root is found by bracketing; mu0 starts at the observed mean and
moves to the root, ITERATIONS times in all, so that the weights stay even.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from mixupexp.analysis import sequential as seq

SIMS = 4000  # simulated comparisons per expectation: the estimate's Monte-Carlo sd is then about 1 % of an sd
RNG_SEED = 0  # fixed: the same data give the same estimate every time they are summarised


@dataclass(frozen=True)
class Design:
    """One comparison's sequential design, as its sweep ran it."""

    level: float  # alpha / K
    smallest_effect: float = seq.SMALLEST_EFFECT
    min_seeds: int = seq.MIN_SEEDS
    seeds_per_round: int = seq.SEEDS_PER_ROUND
    max_seeds: int = seq.MAX_SEEDS
    e_value: object = seq.DEFAULT_E_VALUE  # what `look` judges by: the e-value, or planned boundaries (seq.design_test)

    @property
    def rounds(self) -> list[int]:
        return seq.round_bounds(self.min_seeds, self.seeds_per_round, self.max_seeds)


class Simulated:
    """Standard normal pairs z (sims, max_seeds), summarised per round, for differences mu + sd * z."""

    def __init__(self, design: Design, sims: int = SIMS, rng_seed: int = RNG_SEED):
        self.design = design
        z = np.random.default_rng(rng_seed).standard_normal((sims, design.max_seeds))
        rounds = design.rounds
        self.means = np.stack([z[:, :n].mean(axis=1) for n in rounds], axis=1)
        self.sds = np.stack([z[:, :n].std(axis=1, ddof=1) for n in rounds], axis=1)

    def stops(self, mu: float, sd: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(code, round, mean, sd) where each simulated comparison stopped (the last round: the budget)."""
        d = self.design
        codes, means = [], []
        for r, n in enumerate(d.rounds):
            mean = mu + sd * self.means[:, r]
            code, *_ = seq.look(n, mean, sd * self.sds[:, r], level=d.level, smallest_effect=d.smallest_effect,
                                at_budget=r == len(d.rounds) - 1, e_value=d.e_value)
            codes.append(code), means.append(mean)
        codes, means = np.stack(codes, 1), np.stack(means, 1)
        first = np.argmax(codes != 0, axis=1)
        pick = lambda a: np.take_along_axis(a, first[:, None], 1)[:, 0]
        return pick(codes), first, pick(means), sd * pick(self.sds)


ITERATIONS = 3  # simulations per estimate: at the observed mean, then at each root
BRACKET_STEPS = 8  # sds searched on each side of the reference effect for the root
MIN_EVENTS = 50  # simulated stops like the observed one below which the expectation is not estimated


def conditional(mean: float, sd: float, verdict: str, design: Design, simulated: Simulated | None = None) -> float:
    """mu~ with E_mu~[mean at stop | the comparison stopped with `verdict`] = mean; NaN without a spread to
    simulate with, or where fewer than MIN_EVENTS simulated comparisons stop with that verdict."""
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0) or verdict not in seq.SETTLED:
        return math.nan
    simulated = simulated or Simulated(design)
    wanted = seq._CODES.index(verdict)
    rounds = np.asarray(design.rounds)
    estimate = mean
    for _ in range(ITERATIONS):  # simulate at the observed mean, then at each root, so that the weights stay even
        code, stopped, means, _ = simulated.stops(estimate, sd)
        event = code == wanted
        if event.sum() < MIN_EVENTS:
            return math.nan
        estimate = _tilted_root(means[event], rounds[stopped[event]], estimate, sd, mean)
        if not math.isfinite(estimate):
            return math.nan
    return estimate


def _tilted_root(m: np.ndarray, n: np.ndarray, mu0: float, sd: float, target: float) -> float:
    """The mu at which the stops (mean m of n pairs each) drawn at mu0, reweighted to mu by their likelihood
    ratio exp(((mu - mu0) n m - n (mu^2 - mu0^2) / 2) / sd^2), have mean `target` (clipped to their range)."""
    if target <= m.min() or target >= m.max():
        return float(np.clip(target, m.min(), m.max()))

    def gap(mu: float) -> float:
        log_w = ((mu - mu0) * n * m - n * (mu * mu - mu0 * mu0) / 2) / sd**2
        w = np.exp(log_w - log_w.max())
        return float((w * m).sum() / w.sum()) - target

    low, high = mu0 - sd, mu0 + sd
    for _ in range(BRACKET_STEPS):
        if gap(low) <= 0:
            break
        low -= sd
    for _ in range(BRACKET_STEPS):
        if gap(high) >= 0:
            break
        high += sd
    if gap(low) > 0 or gap(high) < 0:
        return math.nan  # the reweighted sample cannot reach the mean observed: no estimate
    return float(optimize.brentq(gap, low, high, xtol=1e-4 * sd))
