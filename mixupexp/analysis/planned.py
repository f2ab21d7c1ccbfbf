"""The planned-look design of a sequential sweep (`hydra.sweeper.design=planned`): repeated confidence intervals
with boundaries made for the sweep's own schedule of looks.

The anytime-valid test (analysis/sequential.py) guards infinitely many looks; a sweep takes at most the looks of
its schedule, e.g. 3, 5, ..., 19, 20 pairs. Here every look uses one nominal two-sided level p*, chosen so that
under normal paired differences the chance that ANY of the schedule's looks has its t statistic at the true mean
beyond the t quantile at p* is the comparison's level alpha / K (a Pocock-type boundary: Pocock 1977; the
repeated confidence intervals of Jennison & Turnbull 1989). The interval at a look with n pairs is then
mean +- t_{n-1}(1 - p*/2) s / sqrt(n), and it holds the true mean at every look of the schedule at once with
probability 1 - alpha / K, so "better", "worse" and "within +-delta" all come from it as in the anytime design.

Under the normal model the joint law of the t statistics at the looks does not depend on sigma (each is a
function of the standardised differences), so p* depends only on the looks and the level: it is computed once by
simulating that joint law, with a fixed random stream (the same p* for every command: a sweep started again
takes the same decisions), and cached. With a failed run a look has fewer pairs than planned; the same p* is
used at its n.

References:
- S. J. Pocock (1977), "Group sequential methods in the design and analysis of clinical trials", Biometrika
  64(2): 191-199.
- C. Jennison, B. W. Turnbull (1989), "Interim analyses: the repeated confidence interval approach", J. R. Stat.
  Soc. B 51(3): 305-361.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

SIMS = 400_000
"""Simulated null paths per boundary: the share of them crossing at level alpha / 8 = 0.625 % has a relative
Monte-Carlo sd of 2 %; the level is lowered by two of those sds (MARGIN_SE), so the boundary's true error is below
alpha / K unless the simulation was 2 sd off."""
MARGIN_SE = 2.0
STREAM = 20261207  # the boundaries' random stream: fixed, so that every command computes the same boundary
CHUNK = 50_000  # paths simulated at once (memory: CHUNK x max_seeds doubles)


def min_p_values(looks: tuple[int, ...], sims: int, stream: int) -> np.ndarray:
    """For `sims` simulated series of N(0, 1) paired differences, the smallest two-sided t-test p-value over the
    looks (pairs seen at each look, increasing): a look rejects at p* when its p-value is <= p*."""
    rng = np.random.default_rng(stream)
    n = np.asarray(looks, dtype=float)
    index = np.asarray(looks) - 1
    out = []
    for start in range(0, sims, CHUNK):
        d = rng.standard_normal((min(CHUNK, sims - start), looks[-1]))
        total, squares = np.cumsum(d, axis=1)[:, index], np.cumsum(d * d, axis=1)[:, index]
        mean = total / n
        sd = np.sqrt(np.maximum(squares - n * mean * mean, 0.0) / (n - 1))
        p = 2.0 * stats.t.sf(np.abs(mean) * np.sqrt(n) / sd, n - 1)
        out.append(p.min(axis=1))
    return np.concatenate(out)


@functools.lru_cache(maxsize=None)
def nominal_level(looks: tuple[int, ...], level: float, sims: int = SIMS, stream: int = STREAM) -> float:
    """p*: the nominal two-sided level of every look such that P(some look rejects a true null) = `level`, minus
    MARGIN_SE Monte-Carlo sds of that share (looks: the pairs at each look, e.g. (3, 5, ..., 19, 20))."""
    target = level - MARGIN_SE * math.sqrt(level * (1.0 - level) / sims)
    return float(np.quantile(min_p_values(tuple(looks), sims, stream), max(target, 0.0)))


def critical_t(n, looks: tuple[int, ...], level: float):
    """The planned boundary at n pairs: |t| >= t_{n-1}(1 - p*/2) rejects (inf for n < 2); n may be an array."""
    n = np.asarray(n, dtype=float)
    half = nominal_level(tuple(looks), float(level)) / 2.0
    with np.errstate(invalid="ignore"):
        out = np.where(n >= 2, stats.t.isf(half, np.maximum(n - 1.0, 1.0)), np.inf)
    return out if out.ndim else float(out)


@dataclass(frozen=True)
class Planned:
    """The planned-look test of a schedule, in the interface `sequential.look` takes an e-value by: the critical
    t of a look, and (there is no e-value in this design) NaN for its log e-value."""

    looks: tuple[int, ...]

    def critical_t(self, n, level: float):
        return critical_t(n, self.looks, level)

    def log_e(self, t, n):
        return np.full(np.broadcast(np.asarray(t), np.asarray(n)).shape, np.nan)

    @property
    def text(self) -> str:
        return (f"repeated confidence intervals planned for the looks at {', '.join(map(str, self.looks))} pairs "
                "(one nominal level at every look, calibrated for the schedule)")
