"""The statistics at the edges a sweep reaches in practice: accuracies that are whole test images (floating point
must not make a constant difference look like a certain one), arms that finished different seeds, intervals of
P(better) at 3 to 10 seeds (checked by simulation), and error control over every comparison of a summary."""

import math

import numpy as np
import pytest
from scipy import stats

from mixupexp.analysis import stats_simulation
from mixupexp.analysis.stats import (
    CONSTANT_DIFFERENCE,
    NO_SPREAD,
    PAIRED,
    SIGNIFICANCE,
    UNTESTED,
    WELCH,
    compare_to_baseline,
    holm,
    judge_family,
    probability_of_improvement,
    verdict,
)

NAN = float("nan")


def accuracies(correct, test_images=500):
    """Accuracies in % the way an evaluation computes them: correct / N * 100."""
    return [k / test_images * 100 for k in correct]


# ------------------------------------------------------------------ degenerate cases on the data's resolution


def test_a_constant_difference_of_whole_test_images_is_not_testable():
    # +2 images (+0.4 points) at every seed; the float differences spread by 8e-15, which a t-test calls p ~ 1e-28.
    baseline, mixup, seeds = accuracies([350, 356, 347]), accuracies([352, 358, 349]), [0, 1, 2]
    c = compare_to_baseline(mixup, baseline, seeds, seeds)
    assert c.test == CONSTANT_DIFFERENCE, c
    for resolution in (None, 100 / 500):
        c = compare_to_baseline(mixup, baseline, seeds, seeds, resolution=resolution)
        assert c.test == CONSTANT_DIFFERENCE, (resolution, c)
        assert c.delta == pytest.approx(0.4) and math.isnan(c.p_value) and math.isnan(c.low)
        assert verdict(c).startswith("not testable")
    flat = compare_to_baseline(accuracies([352] * 3), accuracies([350] * 3), seeds, seeds)
    assert flat.test == CONSTANT_DIFFERENCE


def test_an_arm_whose_runs_agree_up_to_rounding_has_no_spread():
    # 57 % written three ways: 57.0, 0.57 * 100 and 57 / 100 * 100 (the last two are 56.99999999999999).
    agreeing = [57.0, 0.57 * 100, 57 / 100 * 100]
    c = compare_to_baseline(agreeing, [56.0, 0.56 * 100, 56.0])
    assert c.test == NO_SPREAD and math.isnan(c.p_value), c
    assert compare_to_baseline(agreeing, [55.0, 56.0, 57.0]).test == NO_SPREAD
    # A real spread of one test image at N = 500 is a spread, with or without the resolution given.
    for resolution in (None, 0.2):
        assert compare_to_baseline([57.0, 57.2, 57.0], [56.0, 56.2, 56.4], resolution=resolution).test == WELCH


def test_a_spread_below_half_the_resolution_is_no_spread():
    # Given the resolution (10,000 test images: 0.01 points), differences 0.004 apart are rounding, not spread;
    # one image apart they are spread.
    seeds = [0, 1, 2]
    c = compare_to_baseline([70.01, 70.514, 69.81], [70.0, 70.5, 69.8], seeds, seeds, resolution=0.01)
    assert c.test == CONSTANT_DIFFERENCE, c
    d = compare_to_baseline([70.01, 70.52, 69.81], [70.0, 70.5, 69.8], seeds, seeds, resolution=0.01)
    assert d.test == PAIRED, d


def test_the_seeds_advice_has_nothing_to_size_from_a_constant_difference():
    seeds = [0, 1, 2]
    baseline, mixup = (accuracies([350, 356, 347]), seeds), (accuracies([352, 358, 349]), seeds)
    judged = judge_family([mixup], baseline)[0]
    assert math.isnan(judged.detectable) and math.isnan(judged.seeds_needed), judged
    assert judged.verdict.startswith("not testable")


def test_ties_are_judged_on_the_resolution_too():
    # Seeds 0 and 1 tie (the same image count reached by different float roundings), seed 2 is a win.
    p = probability_of_improvement([0.57 * 100, 70.0, 71.0], [57.0, 70.0, 70.0], [0, 1, 2], [0, 1, 2])
    assert p.estimate == pytest.approx(2 / 3)


# --------------------------------------------------------------------- pairing on the seeds both arms finished


def test_arms_that_finished_different_seeds_are_compared_unpaired_with_the_reason():
    # Baseline seeds 3-4 and mixup seeds 0-1 failed: one seed (2) finished in both, too few to pair on.
    seeds = [0, 1, 2, 3, 4]
    baseline = [70.1, 69.8, 70.3, NAN, NAN]
    mixup = [NAN, NAN, 71.0, 70.6, 71.2]
    c = compare_to_baseline(mixup, baseline, seeds, seeds)
    assert c.test == WELCH and not math.isnan(c.p_value), c
    assert "fewer than 2 seeds finished in both arms" in c.note
    assert c.delta == pytest.approx(np.mean([71.0, 70.6, 71.2]) - np.mean([70.1, 69.8, 70.3]))
    assert (c.n_values, c.n_baseline) == (3, 3) and c.seeds == ()
    assert not verdict(c).startswith("not tested")


def test_a_seed_run_by_one_arm_only_leaves_the_others_paired():
    # The seed moves both arms by several points (sd about 3); mixup adds 1. The baseline also ran seed 5.
    seed_effect = [3.0, -2.5, 4.0, -3.5, 1.0, -1.5]
    baseline = [70 + s for s in seed_effect]
    mixup = [71 + s + e for s, e in zip(seed_effect, [0.1, -0.1, 0.2, 0.0, -0.15])]
    c = compare_to_baseline(mixup, baseline, [0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5])
    assert c.test == PAIRED and c.p_value < 0.001, c
    assert c.n == 5 and c.seeds == (0, 1, 2, 3, 4) and (c.n_values, c.n_baseline) == (5, 5)
    assert c.delta == pytest.approx(np.mean([1.1, 0.9, 1.2, 1.0, 0.85]))
    assert "1 run finished in one arm only" in c.note
    welch = compare_to_baseline(mixup, baseline)  # what ignoring the seeds gives
    assert welch.test == WELCH and welch.p_value > 0.4


def test_delta_its_interval_n_and_spread_come_from_the_pairs_used():
    seeds = [0, 1, 2, 3]
    mixup, baseline = [71.0, NAN, 73.5, 74.0], [70.0, 71.0, 72.0, 72.2]
    c = compare_to_baseline(mixup, baseline, seeds, seeds)
    differences = np.array([1.0, 1.5, 1.8])
    assert c.test == PAIRED and c.n == 3 and c.seeds == (0, 2, 3)
    assert c.delta == pytest.approx(differences.mean()) and c.spread == pytest.approx(differences.std(ddof=1))
    low, high = stats.ttest_1samp(differences, 0).confidence_interval(0.95)
    assert (c.low, c.high) == (pytest.approx(low), pytest.approx(high))
    judged = judge_family([(mixup, seeds)], (baseline, seeds))[0]
    assert judged.improvement.n == 3


def test_one_common_pair_falls_back_to_all_finished_runs():
    # Same seed list, but only seed 0 finished in both: the old pairing kept one pair and tested nothing.
    seeds = [0, 1, 2]
    c = compare_to_baseline([71.0, NAN, 72.0], [70.0, 70.5, NAN], seeds, seeds)
    assert c.test == WELCH and "fewer than 2 seeds finished in both arms" in c.note
    assert c.delta == pytest.approx(71.5 - 70.25)


def test_duplicate_seeds_are_not_paired_and_say_why():
    c = compare_to_baseline([71.0, 71.5, 72.0], [70.0, 70.5, 71.0], [0, 0, 1], [0, 1, 2])
    assert c.test == WELCH and "more than once" in c.note, c


# ------------------------------------------------------------------------------ P(better) and its interval


def test_paired_and_unpaired_p_better_are_labelled_apart():
    seeds = [0, 1, 2]
    paired = probability_of_improvement([71.0, 70.0, 73.0], [70.0, 71.0, 72.0], seeds, seeds)
    unpaired = probability_of_improvement([71.0, 70.0, 73.0], [70.0, 71.0, 72.0])
    assert paired.kind != unpaired.kind
    assert "seed" in paired.kind and "run" in unpaired.kind
    assert paired.estimate == pytest.approx(2 / 3) and unpaired.estimate == pytest.approx(5 / 9)


def test_paired_interval_is_clopper_pearson_with_ties_counted_conservatively():
    # Win, tie, loss: estimate (1 + 0.5) / 3; the lower bound counts the tie as a loss, the upper as a win.
    p = probability_of_improvement([71.0, 70.0, 69.0], [70.0, 70.0, 70.0], [0, 1, 2], [0, 1, 2])
    assert p.estimate == pytest.approx(0.5)
    assert p.low == pytest.approx(stats.beta.ppf(0.025, 1, 3))
    assert p.high == pytest.approx(stats.beta.ppf(0.975, 3, 1))
    every_seed = probability_of_improvement([71.0, 72.0, 73.0], [70.0, 70.0, 70.0], [0, 1, 2], [0, 1, 2])
    assert every_seed.high == 1.0 and every_seed.low == pytest.approx(0.025 ** (1 / 3))


COVERAGE_REPEATS = 800


def coverage(p_true: float, n: int, paired: bool, rng: np.random.Generator) -> float:
    """Share of simulated experiments (normal runs, n seeds per arm) whose 95 % interval holds the true P."""
    covered = 0
    seeds = list(range(n))
    for _ in range(COVERAGE_REPEATS):
        if paired:  # differences ~ N(mu, 1): P(difference > 0) = Phi(mu)
            baseline = 70 + rng.normal(0, 2, n) + rng.normal(0, 1, n)
            values = baseline + rng.normal(stats.norm.ppf(p_true), 1, n)
            p = probability_of_improvement(values, baseline, seeds, seeds)
        else:  # runs ~ N(70 + delta, 1) against N(70, 1): P(X > Y) = Phi(delta / sqrt 2)
            baseline = rng.normal(70, 1, n)
            values = rng.normal(70 + math.sqrt(2) * stats.norm.ppf(p_true), 1, n)
            p = probability_of_improvement(values, baseline)
        covered += p.low <= p_true <= p.high
    return covered / COVERAGE_REPEATS


@pytest.mark.slow
@pytest.mark.parametrize("paired", [True, False], ids=["paired", "unpaired"])
def test_p_better_intervals_cover_at_few_seeds(paired):
    rng = np.random.default_rng(11)
    floor = 0.95 - 3 * math.sqrt(0.95 * 0.05 / COVERAGE_REPEATS)
    measured = {(p, n): coverage(p, n, paired, rng) for p in (0.5, 0.76, 0.9) for n in (3, 5, 10)}
    assert all(rate >= floor for rate in measured.values()), measured


# ------------------------------------------------------------------------ one family over the whole summary


def crossed_sweep(rng: np.random.Generator, lrs: int = 4, configurations: int = 2, n: int = 3):
    """(arm, baseline) pairs of a crossed sweep: per learning rate a baseline and `configurations` arms."""
    seeds = list(range(n))
    pairs, labels = [], []
    for lr in range(lrs):
        baseline = (list(70 + rng.normal(0, 1, n)), seeds)
        for _ in range(configurations):
            pairs.append(((list(70 + rng.normal(0, 1, n)), seeds), baseline))
            labels.append(lr)
    return pairs, labels


def test_comparisons_with_different_baselines_are_one_family_by_default():
    pairs, labels = crossed_sweep(np.random.default_rng(5))
    judged = judge_family(pairs)
    raw = [compare_to_baseline(arm[0], base[0], arm[1], base[1]).p_value for arm, base in pairs]
    assert [j.adjusted_p for j in judged] == pytest.approx(list(holm(raw)))
    assert all(j.family_size == 8 and j.level == pytest.approx(SIGNIFICANCE / 8) for j in judged)
    per_baseline = judge_family(pairs, groups=labels)
    for lr in range(4):
        members = [i for i, label in enumerate(labels) if label == lr]
        assert [per_baseline[i].adjusted_p for i in members] == pytest.approx(list(holm([raw[i] for i in members])))
        assert all(per_baseline[i].family_size == 2 for i in members)


def test_the_family_counts_only_the_comparisons_tested():
    seeds = [0, 1, 2]
    baseline = ([70.0, 70.4, 69.8], seeds)
    arms = [([71.0, 70.2, 70.9], seeds), ([71.0, 71.4, 70.8], seeds), ([75.0], [0])]  # tested, constant, one run
    judged = judge_family(arms, baseline)
    assert judged[0].level == SIGNIFICANCE and judged[0].adjusted_p == pytest.approx(judged[0].comparison.p_value)
    assert [j.family_size for j in judged] == [1, 1, 1]
    assert judged[1].comparison.test == CONSTANT_DIFFERENCE and judged[2].comparison.test == UNTESTED


def test_simultaneous_intervals_are_at_the_bonferroni_level_of_the_family():
    pairs, _ = crossed_sweep(np.random.default_rng(6))
    judged = judge_family(pairs)
    for j, (arm, base) in zip(judged, pairs):
        assert j.simultaneous_confidence == pytest.approx(1 - SIGNIFICANCE / 8)
        wide = compare_to_baseline(arm[0], base[0], arm[1], base[1], confidence=1 - SIGNIFICANCE / 8)
        assert (j.simultaneous_low, j.simultaneous_high) == (pytest.approx(wide.low), pytest.approx(wide.high))
        assert j.simultaneous_low < j.comparison.low < j.comparison.high < j.simultaneous_high
        # A Bonferroni interval that excludes 0 implies a Holm rejection (the converse need not hold).
        if j.simultaneous_low > 0 or j.simultaneous_high < 0:
            assert j.adjusted_p < SIGNIFICANCE


def test_a_family_of_comparisons_with_one_baseline_still_works():
    seeds = [0, 1, 2, 3, 4]
    baseline = ([70.0, 70.4, 69.8, 70.1, 70.3], seeds)
    clear = ([75.0, 75.3, 74.9, 75.4, 75.0], seeds)
    judged = judge_family([clear, baseline], baseline)
    assert judged[0].verdict.startswith("better") and judged[1].verdict.startswith("not testable")
    assert judged[0].level == SIGNIFICANCE and judged[0].family_size == 1  # the copy has no spread: one tested


@pytest.mark.slow
def test_one_family_per_summary_keeps_the_error_rate_of_a_crossed_sweep():
    # 4 learning rates x (none + 2 mixup) x 3 seeds, no effect anywhere: families per baseline let about 18 % of
    # such sweeps state a false verdict; one family over the summary keeps it near 5 %.
    sweeps = 400
    rates = stats_simulation.crossed_error(sweeps, np.random.default_rng(2))
    margin = 3 * math.sqrt(SIGNIFICANCE * (1 - SIGNIFICANCE) / sweeps)
    assert rates["one family"] <= SIGNIFICANCE + margin, rates
    assert rates["one family per baseline"] > 0.1, rates
