"""Holm's correction, the probability of improvement, the power of the test, the cases a t-test cannot judge,
and the calibration of the verdicts by simulation (the statistics functions called directly)."""

import math

import numpy as np
import pytest

from mixupexp.analysis.stats import (
    CONSTANT_DIFFERENCE,
    NO_SPREAD,
    PAIRED,
    SIGNIFICANCE,
    clip_interval,
    compare_to_baseline,
    detectable_difference,
    holm,
    judge_family,
    probability_of_improvement,
    seeds_needed,
    t_test_power,
    verdict,
)

NAN = float("nan")


def test_holm_on_a_hand_checked_family():
    # Sorted: 0.005, 0.01, 0.03, 0.04 (m = 4) -> 4*0.005 = 0.02, 3*0.01 = 0.03, 2*0.03 = 0.06, max(0.04, 0.06) = 0.06
    adjusted = holm([0.01, 0.04, 0.03, NAN, 0.005])
    assert adjusted[[4, 0, 2, 1]] == pytest.approx([0.02, 0.03, 0.06, 0.06])
    assert math.isnan(adjusted[3])  # untested: not part of the family
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]).size == 0 and math.isnan(holm([NAN])[0])


def test_holm_agrees_with_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    p = np.random.default_rng(3).uniform(0, 0.2, size=12)
    assert holm(p) == pytest.approx(multipletests(p, method="holm")[1])


def test_probability_of_improvement_paired_by_seed():
    # Differences by seed: +1, -1, 0, +2 -> wins 1, 0, 0.5, 1 -> 2.5 / 4
    values, baseline = [71.0, 70.0, 72.0, 75.0], [70.0, 71.0, 72.0, 73.0]
    p = probability_of_improvement(values, baseline, seeds=[0, 1, 2, 3], baseline_seeds=[0, 1, 2, 3])
    assert p.estimate == pytest.approx(0.625)
    assert 0 <= p.low <= p.estimate <= p.high <= 1
    again = probability_of_improvement(values, baseline, seeds=[0, 1, 2, 3], baseline_seeds=[0, 1, 2, 3])
    assert (again.low, again.high) == (p.low, p.high)  # a fixed bootstrap stream


def test_probability_of_improvement_unpaired_is_mann_whitney():
    a, b = [3.0, 5.0, 7.0], [4.0, 5.0]
    # Pairs (a, b): (3,4) 0, (3,5) 0, (5,4) 1, (5,5) 0.5, (7,4) 1, (7,5) 1 -> 3.5 / 6
    p = probability_of_improvement(a, b)
    assert p.estimate == pytest.approx(3.5 / 6)
    u = pytest.importorskip("scipy.stats").mannwhitneyu(a, b).statistic
    assert p.estimate == pytest.approx(u / (len(a) * len(b)))


def test_probability_of_improvement_confidence_interval_narrows_with_seeds():
    rng = np.random.default_rng(0)
    small = probability_of_improvement([0.5, 1.5, -0.2], [0.0, 1.0, -0.5])
    large = probability_of_improvement(rng.normal(1.5, 1, 40), rng.normal(0, 1, 40))
    assert large.high - large.low < small.high - small.low
    assert large.low > 0.5  # 1.5 sd apart: P(improvement) about 0.86
    assert math.isnan(probability_of_improvement([1.0], [0.0, 1.0]).low)


def test_power_agrees_with_statsmodels():
    power = pytest.importorskip("statsmodels.stats.power")
    for effect, n, level in [(1.2, 5, 0.01), (0.5, 20, 0.05), (2.0, 3, 0.05 / 8)]:
        assert t_test_power(effect, n, level, paired=True) == pytest.approx(
            power.TTestPower().power(effect, n, level, alternative="two-sided"))
        assert t_test_power(effect, n, level, paired=False) == pytest.approx(
            power.TTestIndPower().power(effect, n, level, ratio=1, alternative="two-sided"))


def test_power_agrees_with_scipy_by_simulation():
    # Paired: 4 pairs, differences ~ N(1.5, 1): share of p < 0.05 among many simulated tests
    rng = np.random.default_rng(1)
    differences = rng.normal(1.5, 1.0, size=(20_000, 4))
    from scipy import stats

    rejected = (stats.ttest_1samp(differences, 0, axis=1).pvalue < 0.05).mean()
    assert rejected == pytest.approx(t_test_power(1.5, 4, 0.05, paired=True), abs=0.015)


def test_detectable_difference_and_seeds_needed():
    power = pytest.importorskip("statsmodels.stats.power")
    smallest = detectable_difference(spread=2.0, n=3, level=0.05 / 8, paired=False)
    assert power.TTestIndPower().power(smallest / 2.0, 3, 0.05 / 8) == pytest.approx(0.8, abs=1e-6)
    # statsmodels solves for a real n; the seeds to run are the next whole number
    assert seeds_needed(1.6, 1.5, 0.05, paired=True) == math.ceil(
        power.TTestPower().solve_power(effect_size=1.6 / 1.5, alpha=0.05, power=0.8))
    assert seeds_needed(-1.6, 1.5, 0.05, paired=False) == math.ceil(
        power.TTestIndPower().solve_power(effect_size=1.6 / 1.5, alpha=0.05, power=0.8))
    assert seeds_needed(10.0, 1.0, 0.05, paired=True) == 3  # never fewer than 3
    assert seeds_needed(0.0, 1.0, 0.05, paired=True) == math.inf
    assert math.isnan(seeds_needed(1.0, 0.0, 0.05, paired=True)) and math.isnan(detectable_difference(NAN, 3, 0.05, True))


def test_arms_without_spread_are_not_testable():
    # A t-test would divide by a zero spread and call a 1-point difference certain (p = 0, CI [1, 1]).
    constant = compare_to_baseline([71.0, 72.0, 73.0], [70.0, 71.0, 72.0], seeds=[0, 1, 2], baseline_seeds=[0, 1, 2])
    assert constant.test == CONSTANT_DIFFERENCE and constant.delta == pytest.approx(1.0)
    assert math.isnan(constant.p_value) and math.isnan(constant.low)
    assert verdict(constant).startswith("not testable")
    flat = compare_to_baseline([71.0, 71.0, 71.0], [70.0, 70.0, 70.0])
    assert flat.test == NO_SPREAD and math.isnan(flat.p_value) and verdict(flat).startswith("not testable")
    one_flat_arm = compare_to_baseline([71.0, 71.0, 71.0], [70.0, 70.5, 69.0])
    assert one_flat_arm.test == NO_SPREAD


def test_a_nan_drops_its_seed_pair_only():
    comparison = compare_to_baseline([71.0, NAN, 73.5, 74.0], [70.0, 71.0, 72.0, 72.2], seeds=[0, 1, 2, 3],
                                     baseline_seeds=[0, 1, 2, 3])
    assert comparison.test == PAIRED and comparison.n == 3
    assert comparison.delta == pytest.approx(np.mean([1.0, 1.5, 1.8]))
    assert not math.isnan(comparison.p_value)


def test_clip_interval_to_percentages():
    assert clip_interval(-3.0, 101.5) == (0.0, 100.0)
    assert clip_interval(40.0, 60.0) == (40.0, 60.0)
    assert all(math.isnan(v) for v in clip_interval(NAN, NAN))


# ------------------------------------------------------------------------------------ calibration by simulation

CONFIGURATIONS, SWEEPS = 8, 400


def simulate_sweeps(seeds: int, effect_sd: float, correct: bool, rng_seed: int = 0) -> tuple[float, float]:
    """Sweeps of 8 configurations against one baseline, every run ~ N(70, 1) (sd = 1 point), the first configuration
    shifted by `effect_sd`. Returns (share of sweeps with any better/worse verdict among the 7 null configurations,
    share of sweeps where the shifted one is called better), each judged on Holm-adjusted or raw p-values."""
    rng = np.random.default_rng(rng_seed)
    seed_ids = list(range(seeds))
    false_alarms = found = 0
    for _ in range(SWEEPS):
        baseline = rng.normal(70, 1, seeds)
        comparisons = [compare_to_baseline(rng.normal(70 + (effect_sd if k == 0 else 0), 1, seeds), baseline,
                                           seed_ids, seed_ids) for k in range(CONFIGURATIONS)]
        p = np.array([c.p_value for c in comparisons])
        judged = holm(p) if correct else p
        calls = [verdict(c, q) for c, q in zip(comparisons, judged)]
        false_alarms += any(not call.startswith("no significant") for call in calls[1:])
        found += calls[0].startswith("better")
    return false_alarms / SWEEPS, found / SWEEPS


def monte_carlo_margin(rate: float) -> float:
    return 2 * math.sqrt(rate * (1 - rate) / SWEEPS)


def test_without_an_effect_corrected_verdicts_keep_the_family_wise_rate():
    raw_rate, _ = simulate_sweeps(seeds=3, effect_sd=0.0, correct=False)
    holm_rate, _ = simulate_sweeps(seeds=3, effect_sd=0.0, correct=True)
    assert raw_rate > 0.2  # eight tests at 5 % each: about 1 - 0.95^8 = 34 % (less: they share a baseline)
    assert holm_rate <= SIGNIFICANCE + monte_carlo_margin(SIGNIFICANCE)


def test_a_true_effect_of_two_sd_is_found_with_enough_seeds():
    # Paired differences have sd sqrt(2); Holm's first step tests at 5 % / 8. Ten seeds give about 78 % power.
    _, found = simulate_sweeps(seeds=10, effect_sd=2.0, correct=True)
    predicted = t_test_power(2.0 / math.sqrt(2), 10, SIGNIFICANCE / CONFIGURATIONS, paired=True)
    assert found > 0.6
    assert found == pytest.approx(predicted, abs=monte_carlo_margin(predicted) + 0.03)  # Holm >= Bonferroni
    # With three seeds the same effect is almost never found: what seeds_needed warns about.
    _, found_with_three = simulate_sweeps(seeds=3, effect_sd=2.0, correct=True)
    assert found_with_three < 0.2
    assert seeds_needed(2.0, math.sqrt(2), SIGNIFICANCE / CONFIGURATIONS, paired=True) == 11  # the first n above 80 %


def test_a_family_is_judged_on_holm_adjusted_p_values():
    seeds = [0, 1, 2, 3, 4]
    baseline = ([70.0, 70.4, 69.8, 70.1, 70.3], seeds)
    clear = ([75.0, 75.3, 74.9, 75.4, 75.0], seeds)
    borderline = ([71.0, 70.3, 70.4, 71.0, 70.8], seeds)  # raw p = 0.040: better on its own, not in a family
    flat = ([71.0, 71.4, 70.8, 71.1, 71.3], seeds)  # +1 at every seed: not testable
    null = ([70.3, 69.9, 70.0, 70.0, 70.4], seeds)
    judged = judge_family([clear, borderline, flat, null], baseline)
    assert judged[1].comparison.p_value < 0.05 < judged[1].adjusted_p
    assert judged[1].adjusted_p == pytest.approx(2 * judged[1].comparison.p_value)  # rank 2 of 3 tested
    assert judged[0].verdict.startswith("better") and judged[1].verdict.startswith("no significant")
    assert judged[2].verdict.startswith("not testable") and math.isnan(judged[2].adjusted_p)
    # The family is the 3 comparisons tested: the one that was not testable is not part of it.
    assert judged[3].verdict.startswith("no significant") and judged[0].level == pytest.approx(0.05 / 3)
    assert judged[0].improvement.estimate == 1.0 and judged[1].improvement.estimate == 0.8  # 4 of 5 seeds
    assert judged[1].seeds_needed == seeds_needed(judged[1].comparison.delta, judged[1].comparison.spread,
                                                  0.05 / 3, paired=True) > 5
