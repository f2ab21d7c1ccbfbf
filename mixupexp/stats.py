"""Statistics over seeds: the mean with its t-distribution confidence interval, and a configuration against the
baseline (difference of means, its confidence interval and a t-test p-value).

Plain functions of arrays, so that the summary and the tests share them. Where a quantity cannot be computed
(fewer than two runs) it is NaN rather than an error: a sweep with one seed per configuration still summarises.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
SIGNIFICANCE = 0.05
PAIRED = "paired t-test"
WELCH = "Welch t-test"
UNTESTED = "none (fewer than 2 runs)"


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float
    sem: float  # standard error of the mean
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    delta: float  # mean of the configuration minus mean of the baseline
    low: float
    high: float
    p_value: float
    test: str  # PAIRED, WELCH or UNTESTED


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


def _pairs_by_seed(seeds: Sequence | None, baseline_seeds: Sequence | None) -> bool:
    """Pair runs when both arms ran exactly the same seeds, each once."""
    if seeds is None or baseline_seeds is None:
        return False
    seeds, baseline_seeds = list(seeds), list(baseline_seeds)
    return len(set(seeds)) == len(seeds) >= 2 and sorted(seeds) == sorted(baseline_seeds)


def compare_to_baseline(
    values: Sequence[float],
    baseline: Sequence[float],
    seeds: Sequence | None = None,
    baseline_seeds: Sequence | None = None,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Difference of means (values - baseline) with its confidence interval and a two-sided t-test.

    When both arms ran the same seeds (given), runs are paired by seed (paired t-test on the differences, which
    removes the seed's shared share of the noise); otherwise Welch's t-test, which does not assume equal variances.
    """
    if _pairs_by_seed(seeds, baseline_seeds):
        by_seed = dict(zip(baseline_seeds, baseline))
        a = np.asarray(values, dtype=float)
        b = np.asarray([by_seed[s] for s in seeds], dtype=float)
        test_name, run_test = PAIRED, lambda: stats.ttest_rel(a, b)
    else:
        a, b = _finite(values), _finite(baseline)
        test_name, run_test = WELCH, lambda: stats.ttest_ind(a, b, equal_var=False)
    if len(a) == 0 or len(b) == 0:
        return Comparison(np.nan, np.nan, np.nan, np.nan, UNTESTED)
    delta = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return Comparison(delta, np.nan, np.nan, np.nan, UNTESTED)
    with warnings.catch_warnings():
        # Arms without spread (identical runs) make scipy warn about precision and return t = 0/0.
        warnings.simplefilter("ignore", RuntimeWarning)
        result = run_test()
        low, high = result.confidence_interval(confidence)
    p_value = float(result.pvalue)
    if np.isnan(p_value) and delta == 0:
        p_value = 1.0  # no spread and no difference: nothing distinguishes the arms
    return Comparison(delta, float(low), float(high), p_value, test_name)


def verdict(comparison: Comparison, significance: float = SIGNIFICANCE) -> str:
    """'better', 'worse' or 'no significant difference at 5 %' (or why no test was possible)."""
    level = f"{100 * significance:g} %"
    if np.isnan(comparison.p_value):
        return "not tested (needs at least 2 finished runs in each arm)"
    if comparison.p_value < significance:
        return f"{'better' if comparison.delta > 0 else 'worse'} than the baseline at {level}"
    return f"no significant difference at {level}"
