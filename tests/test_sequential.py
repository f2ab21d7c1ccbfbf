"""The sequential sweep's decision core: the Bayes factor against its integral, the confidence sequence, the
verdicts round by round, degenerate k/N data, the round planning, the input checks, and the family error by
simulation against the fixed-n t-test re-run after every seed."""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_simulation as sim

NAN = float("nan")
MIXTURE = seq.EValue(seq.MIXTURE, 1.0)  # the Gaussian mixture with g = 1, whose numbers some tests work by hand


def results_from(differences, baseline=70.0):
    """{'none': baseline runs, 'mixup': baseline + difference} by seed, for one comparison."""
    base = {s: baseline + 0.1 * s for s in range(len(differences))}
    return {"none": base, "mixup": {s: base[s] + d for s, d in enumerate(differences)}}


# ---- the e-value -------------------------------------------------------------------------------------------


def test_bayes_factor_by_hand():
    # d = 1, 2, 3: mean 2, s = 1, t = 2 sqrt(3), t^2 = 12, nu = 2, g = 1, 1 + n g = 4:
    # BF = 4^(-1/2) [(1 + 12/2) / (1 + 12/(2*4))]^(3/2) = 0.5 (7 / 2.5)^1.5 = 0.5 * 2.8^1.5 = 2.342648
    assert math.exp(seq.log_e_value([1.0, 2.0, 3.0])) == pytest.approx(0.5 * 2.8**1.5, rel=1e-12)
    assert 0.5 * 2.8**1.5 == pytest.approx(2.342648, abs=1e-6)
    # d = 1, 2, 3, 1.5, 2.5: mean 2, s^2 = 2.5/4, t^2 = 4 * 5 / 0.625 = 32, nu = 4, 1 + n g = 6:
    # BF = 6^(-1/2) [(1 + 8) / (1 + 32/24)]^(5/2) = 6^(-1/2) (27/7)^2.5 = 11.9286
    assert math.exp(seq.log_e_value([1.0, 2.0, 3.0, 1.5, 2.5])) == pytest.approx(6**-0.5 * (27 / 7) ** 2.5)
    assert 6**-0.5 * (27 / 7) ** 2.5 == pytest.approx(11.9286, abs=1e-4)
    # One pair carries no evidence: the mixture over the effect integrates to exactly 1.
    assert seq.log_e_value([0.7]) == 0.0
    assert seq.log_bayes_factor(5.0, 1) == 0.0


def numeric_bayes_factor(x, g):
    """The Bayes factor as its definition: the normal likelihood integrated over the N(0, g) prior on the effect
    e = mean / sigma and the right-Haar 1/sigma on sigma, H1 over H0 (mean 0), by the trapezoid rule on a fine
    grid of (e, log sigma) (dsigma / sigma = dlog sigma); the integrand is smooth and its tails negligible."""
    x = np.asarray(x, dtype=float)
    log_sigma = np.linspace(-8.0, 6.0, 701)[:, None]
    sigma = np.exp(log_sigma)
    effect = np.linspace(-12, 12, 1201)[None, :] * math.sqrt(g)
    log_lik = lambda mean: stats.norm.logpdf(x[:, None, None], mean, sigma).sum(axis=0)
    shift = log_lik(0.0).max()  # a common scale, for exp without underflow
    h1 = integrate.trapezoid(integrate.trapezoid(
        np.exp(log_lik(effect * sigma) - shift) * stats.norm.pdf(effect, 0, math.sqrt(g)), effect[0], axis=1),
        log_sigma[:, 0])
    h0 = integrate.trapezoid(np.exp(log_lik(0.0) - shift)[:, 0], log_sigma[:, 0])
    return h1 / h0


@pytest.mark.parametrize("null, g", [(0.0, 1.0), (0.5, 1.0), (0.0, 0.3)])
def test_closed_form_matches_the_integral_over_the_prior(null, g):
    d = np.array([0.8, 1.5, 0.3, 1.1, 0.9])
    closed = math.exp(seq.log_e_value(d, null, g))
    assert closed == pytest.approx(numeric_bayes_factor(d - null, g), rel=1e-9)


def test_bayes_factor_grows_with_t_up_to_its_bound():
    t = np.linspace(0, 50, 101)
    log_bf = seq.log_bayes_factor(t, 7)
    assert np.all(np.diff(log_bf) > 0)
    assert log_bf[-1] < 3 * math.log(8)  # (1 + n g)^((n-1)/2) = 8^3
    assert seq.log_bayes_factor(np.inf, 7) == pytest.approx(3 * math.log(8))
    assert seq.log_bayes_factor(-2.0, 7) == seq.log_bayes_factor(2.0, 7)  # two-sided
    assert np.isfinite(seq.log_bayes_factor(1e6, 10_000))  # logs: no overflow


def test_critical_t_is_where_the_bayes_factor_reaches_the_threshold():
    for n in (5, 7, 20, 200):
        t_star = seq.critical_t(n, 0.05)
        assert math.exp(seq.log_bayes_factor(t_star, n)) == pytest.approx(20.0, rel=1e-10)
    # No data of n pairs can reach 1/level when (1 + n g)^((n-1)/2) <= 1/level: 4^1 < 20 at n = 3, and for
    # K = 3 at 5 % (level 1/60) 6^2 = 36 < 60 at n = 5 but 7^2.5 = 130 > 60 at n = 6.
    assert seq.critical_t(3, 0.05) == math.inf
    assert seq.critical_t(5, 0.05 / 3) == math.inf
    assert seq.critical_t(6, 0.05 / 3) < math.inf
    assert seq.critical_t(1, 0.05) == math.inf
    # Wider than the fixed-n t interval: the price of looking at every n.
    assert seq.critical_t(20, 0.05) > stats.t.ppf(0.975, 19)


def test_confidence_sequence_is_the_set_the_test_does_not_reject():
    d = np.array([1.0, 2.0, 3.0, 1.5, 2.5])  # t* = 8.4532 at n = 5, level 5 %
    low, high = seq.confidence_sequence(d, 0.05)
    half = seq.critical_t(5, 0.05) * d.std(ddof=1) / math.sqrt(5)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half))
    assert (low, high) == pytest.approx((-0.98865, 4.98865), abs=1e-5)
    # At its ends the e-value is exactly 1/level; inside it is below.
    assert math.exp(seq.log_e_value(d, low)) == pytest.approx(20.0)
    assert math.exp(seq.log_e_value(d, high)) == pytest.approx(20.0)
    assert math.exp(seq.log_e_value(d, 2.0)) < 20.0
    assert seq.confidence_sequence([1.0], 0.05) == (-math.inf, math.inf)
    assert seq.confidence_sequence([1.0, 2.0, 3.0], 0.05) == (-math.inf, math.inf)  # n = 3 can't reach 20


# ---- the point alternative (the default e-value) ------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 7, 20, 60])
def test_point_e_value_is_the_ratio_of_noncentral_to_central_t_densities(n):
    # The safe t-test's likelihood ratio of the t statistic, averaged over the sign of the effect (1 sd).
    for t in (0.0, 0.4, 1.7, 4.0):
        nu, shift = n - 1, math.sqrt(n)
        ratio = 0.5 * (stats.nct.pdf(t, nu, shift) + stats.nct.pdf(t, nu, -shift)) / stats.t.pdf(t, nu)
        assert math.exp(seq.log_e_point(t, n, 1.0)) == pytest.approx(ratio, rel=1e-8)
    for effect in (0.5, 2.0):
        ratio = 0.5 * (stats.nct.pdf(2.5, n - 1, effect * math.sqrt(n))
                       + stats.nct.pdf(2.5, n - 1, -effect * math.sqrt(n))) / stats.t.pdf(2.5, n - 1)
        assert math.exp(seq.log_e_point(2.5, n, effect)) == pytest.approx(ratio, rel=1e-8)


def test_point_e_value_grows_with_t_up_to_its_bound():
    t = np.linspace(0, 50, 101)
    log_e = seq.log_e_point(t, 7)
    assert np.all(np.diff(log_e) > 0)
    assert log_e[0] == pytest.approx(-3.5)  # exp(-n effect^2 / 2) at t = 0
    # Bound at no spread, exp(-z) 1F1(n/2; 1/2; z), z = n/2; n = 3: 1F1(-1; 1/2; -1.5) = 1 + 3 = 4 by Kummer.
    assert math.exp(seq.log_e_point(np.inf, 3)) == pytest.approx(4.0)
    assert log_e[-1] < seq.log_e_point(np.inf, 7)
    assert seq.log_e_point(-2.0, 7) == seq.log_e_point(2.0, 7)  # two-sided
    assert seq.log_e_point(5.0, 1) == 0.0  # one pair: no evidence
    # Past where 1F1 overflows a double, its series in logs: finite and still increasing.
    far = seq.log_e_point(np.array([1.0, 40.0, 1e3, np.inf]), 3000)
    assert np.all(np.isfinite(far)) and np.all(np.diff(far) > 0)


def test_critical_t_point_is_where_the_e_value_reaches_the_threshold():
    for n in (7, 9, 20, 200):
        t_star = seq.critical_t_point(n, 0.05)
        assert math.exp(seq.log_e_point(t_star, n)) == pytest.approx(20.0, rel=1e-9)
    # 5 pairs reach at most 19.33 < 20 (no spread at all): nothing is decided at 5 % before 6 pairs.
    assert math.exp(seq.log_e_point(np.inf, 5)) == pytest.approx(19.3333, abs=1e-4)
    assert seq.critical_t_point(5, 0.05) == math.inf
    assert seq.critical_t_point(1, 0.05) == math.inf
    assert seq.critical_t_point(7, 0.05) == pytest.approx(4.0316, abs=1e-4)
    assert seq.critical_t_point(20, 0.05 / 3) == pytest.approx(3.5974, abs=1e-4)
    assert list(seq.critical_t_point(np.array([5, 7]), 0.05)) == [math.inf, seq.critical_t_point(7, 0.05)]
    # Narrower than the mixture's where the sweep decides (7-20 pairs), wider than the fixed-n t interval.
    for n in (9, 15, 20):
        assert stats.t.ppf(1 - 0.05 / 6, n - 1) < seq.critical_t_point(n, 0.05 / 3) < seq.critical_t(n, 0.05 / 3)


def test_e_value_choices():
    assert seq.DEFAULT_E_VALUE == seq.EValue(seq.POINT, 1.0)
    assert MIXTURE.critical_t(7, 0.05) == seq.critical_t(7, 0.05)
    assert seq.DEFAULT_E_VALUE.log_e(3.0, 9) == seq.log_e_point(3.0, 9)
    with pytest.raises(ValueError, match="must be 'point' or 'mixture'"):
        seq.EValue("cauchy")
    with pytest.raises(ValueError, match="must be > 0"):
        seq.EValue(seq.POINT, 0.0)


# ---- verdicts ----------------------------------------------------------------------------------------------


def test_verdicts_round_by_round():
    # One configuration (K = 1, level 5 %), rounds at 3, 5, 7, 9 seeds, the default e-value.
    d = [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8, 2.2, 2.1]
    verdicts = []
    for below in (3, 5, 7, 9):
        decision = seq.decide_sweep(results_from(d[:below]), "none", max_seeds=9)["mixup"]
        verdicts.append((decision.verdict, decision.n, decision.round))
    # n = 3, 5: no data reach 20 (E = 2.9, then 12.5 at t = 5.657). n = 7: t = 8.026 > t* = 4.032 (E = 58): better.
    assert verdicts == [("open", 3, 0), ("open", 5, 1), ("better", 7, 2), ("better", 7, 2)]
    decision = seq.decide_sweep(results_from(d), "none", max_seeds=9)["mixup"]
    assert decision.settled_round == 2 and decision.settled
    assert decision.mean == pytest.approx(13.8 / 7)
    assert decision.low > 0 and decision.low == pytest.approx(0.9811, abs=1e-4)
    assert decision.log_e == pytest.approx(math.log(58.419), abs=1e-4)
    assert decision.text == "better"


def test_verdicts_round_by_round_with_the_mixture():
    d = [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8, 2.2, 2.1]
    verdicts = []
    for below in (3, 5, 7, 9):
        decision = seq.decide_sweep(results_from(d[:below]), "none", max_seeds=9, e_value=MIXTURE)["mixup"]
        verdicts.append((decision.verdict, decision.n, decision.round))
    # n = 3: t* = inf. n = 5: t = 5.657 < t* = 8.453 (BF 11.9 < 20). n = 7: t = 8.026 > t* = 4.640: better.
    assert verdicts == [("open", 3, 0), ("open", 5, 1), ("better", 7, 2), ("better", 7, 2)]
    decision = seq.decide_sweep(results_from(d), "none", max_seeds=9, e_value=MIXTURE)["mixup"]
    assert decision.settled_round == 2 and decision.settled
    assert decision.mean == pytest.approx(13.8 / 7)
    assert decision.low > 0 and decision.low == pytest.approx(0.8316, abs=1e-4)
    assert decision.log_e > math.log(20)
    assert decision.text == "better"


def test_worse_and_the_family_level():
    d = [-x for x in [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8, 2.2, 2.1]]
    decision = seq.decide_sweep(results_from(d), "none")["mixup"]
    assert decision.verdict == seq.WORSE and decision.n == 7
    # The same pairs in a family of three are judged at 5 %/3: t* at n = 7 is 8.28 > t = 8.03, still open;
    # at n = 9 t = 10.61 > t* = 4.62: worse, two seeds later.
    family = results_from(d)
    for name in ("mixup_a", "mixup_b"):
        family[name] = dict(family["none"])
    decision = seq.decide_sweep(family, "none")["mixup"]
    assert decision.verdict == seq.WORSE and decision.n == 9
    assert seq.decide_sweep({k: {s: v for s, v in runs.items() if s < 7} for k, runs in family.items()},
                            "none")["mixup"].verdict == seq.OPEN
    # With the mixture (t* = 6.61 at n = 7, 5 %/3) it settles at 7 in the family of three; at 5 %/8 (10.03) not.
    assert seq.decide_sweep(family, "none", e_value=MIXTURE)["mixup"].n == 7
    for name in "cdefg":
        family["mixup_" + name] = dict(family["none"])
    seven = {k: {s: v for s, v in runs.items() if s < 7} for k, runs in family.items()}
    assert seq.decide_sweep(seven, "none", e_value=MIXTURE)["mixup"].verdict == seq.OPEN


def test_degenerate_k_of_n_differences_stay_open():
    # 352, 358, 349 against 350, 356, 347 correct of 500: 0.4 points at every seed, sd 8e-15 in floats.
    base = {s: k / 500 * 100 for s, k in enumerate([350, 356, 347])}
    mixup = {s: k / 500 * 100 for s, k in enumerate([352, 358, 349])}
    differences = seq.paired_differences(mixup, base, 3)
    assert 0 < differences.std(ddof=1) < 1e-13  # not exactly 0...
    assert abs(seq.t_statistic(differences)) > 1e12  # ...so the t statistic alone would call it certain
    assert seq.is_degenerate(differences, resolution=0.2)
    assert seq.is_degenerate(differences)  # without a grid, the float tolerance
    for resolution in (0.2, None):
        decision = seq.decide_sweep({"none": base, "mixup": mixup}, "none", max_seeds=5,
                                    resolution=resolution)["mixup"]
        assert decision.verdict == seq.OPEN and not decision.testable
        assert (decision.low, decision.high) == (-math.inf, math.inf)
        # At the budget it ends not settled, never better.
        at_budget = seq.decide_sweep({"none": base, "mixup": mixup}, "none", max_seeds=3,
                                     resolution=resolution)["mixup"]
        assert at_budget.verdict == seq.NOT_SETTLED and at_budget.text == "not settled at 3 seeds"
    # One step of the grid apart at one seed out of three is spread: testable.
    assert not seq.is_degenerate([0.4, 0.4, 0.6], resolution=0.2)


def test_within_smallest_effect_for_a_tight_null():
    d = [0.1, -0.1, 0.05, -0.05, 0.0, 0.1, -0.1]
    decision = seq.decide_sweep(results_from(d), "none")["mixup"]
    # n = 3, 5: unbounded; n = 7: mean 0, s = 0.087, half-width 4.03 * 0.087 / sqrt(7) = 0.13 < 1: within.
    assert decision.verdict == seq.WITHIN and decision.settled_round == 2 and decision.n == 7
    assert -1 < decision.low < decision.high < 1
    assert decision.high == pytest.approx(0.1320, abs=1e-4)
    assert decision.text == "within ±1 points"
    # The mixture settles it at n = 5: half-width 8.45 * 0.079 / sqrt(5) = 0.30 < 1.
    mixture = seq.decide_sweep(results_from(d), "none", e_value=MIXTURE)["mixup"]
    assert mixture.verdict == seq.WITHIN and mixture.n == 5
    # With delta = 0.1 the seven seeds' half-width 0.13 is too wide: still open (the mixture's 0.14 too).
    for e_value in (seq.DEFAULT_E_VALUE, MIXTURE):
        assert seq.decide_sweep(results_from(d), "none", smallest_effect=0.1,
                                e_value=e_value)["mixup"].verdict == seq.OPEN


def test_an_interval_inside_zero_to_delta_is_better_not_within():
    # Seven pairs near +0.5 with sd 0.016: the interval, 0.5 +- 4.03 * 0.016 / sqrt(7) = [0.48, 0.52], excludes 0
    # and lies inside (-1, +1). "Better, by less than delta" is the verdict: better/worse are decided first.
    d = [0.5, 0.52, 0.48, 0.51, 0.49, 0.5, 0.5]
    decision = seq.decide_sweep(results_from(d), "none")["mixup"]
    assert 0 < decision.low < decision.high < 1
    assert decision.verdict == seq.BETTER and decision.n == 7
    worse = seq.decide_sweep(results_from([-x for x in d]), "none")["mixup"]
    assert -1 < worse.low < worse.high < 0 and worse.verdict == seq.WORSE


def test_budget_ends_not_settled():
    rng = np.random.default_rng(3)
    d = list(rng.normal(0.0, 3.0, size=20))  # sd 3 points: neither 0 excluded nor inside +-1 by 20 seeds
    decisions = seq.decide_sweep(results_from(d), "none")
    assert decisions["mixup"].verdict == seq.NOT_SETTLED
    assert decisions["mixup"].n == 20 and decisions["mixup"].settled_round == 9
    assert decisions["mixup"].text == "not settled at 20 seeds"
    # One seed short of the budget it is still open.
    assert seq.decide_sweep(results_from(d[:19]), "none")["mixup"].verdict == seq.OPEN


def test_a_settled_verdict_is_frozen():
    d = [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8]  # better at round 2 (7 seeds)
    later = d + [-30.0, -30.0, -30.0, -30.0]  # runs after it settled, which would drag the mean below 0
    frozen = seq.decide_sweep(results_from(later), "none")["mixup"]
    assert frozen == seq.decide_sweep(results_from(d), "none")["mixup"]
    assert frozen.verdict == seq.BETTER and frozen.n == 7


def test_failed_runs_drop_out_of_the_pairs():
    d = [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8]
    results = results_from(d)
    results["none"][1] = NAN  # the baseline failed at seed 1
    results["mixup"][4] = NAN  # the configuration at seed 4
    decision = seq.decide_sweep(results, "none", max_seeds=7)["mixup"]
    assert decision.n == 5 and decision.mean == pytest.approx(np.mean([1.0, 3.0, 1.5, 2.0, 1.8]))
    # Fewer than max_seeds pairs, but every seed up to max_seeds ran: the budget is reached.
    assert decision.verdict == seq.NOT_SETTLED and decision.text == "not settled at 5 seeds"


# ---- round planning ----------------------------------------------------------------------------------------


def test_round_bounds_and_budget():
    assert seq.round_bounds() == [3, 5, 7, 9, 11, 13, 15, 17, 19, 20]
    assert seq.round_bounds(4, 3, 4) == [4]
    assert seq.max_runs(3) == 80 and seq.max_runs(8, 10) == 90


def test_next_seeds_first_round_then_only_open_configurations():
    configs = ["a", "b", "c"]
    assert seq.next_seeds(configs, "none", {}, {}) == {name: [0, 1, 2] for name in [*configs, "none"]}
    open_, settled = seq.Decision(seq.OPEN, 3, 0.1, -9, 9, 0.0, 0), seq.Decision(seq.BETTER, 3, 5, 1, 9, 4.0, 0, 0)
    ran = {name: {0, 1, 2} for name in [*configs, "none"]}
    assert seq.next_seeds(configs, "none", {"a": settled, "b": open_, "c": open_}, ran) == {
        "b": [3, 4], "c": [3, 4], "none": [3, 4]}
    # A round cut short (a restart) is finished first, and only what is missing.
    ran.update(b={0, 1, 2, 3, 4}, none={0, 1, 2, 3})
    assert seq.next_seeds(configs, "none", {"a": settled, "b": open_, "c": open_}, ran) == {
        "c": [3, 4], "none": [4]}
    assert seq.next_seeds(configs, "none", {name: settled for name in configs}, ran) == {}


def test_next_seeds_never_beyond_max_seeds():
    open_ = seq.Decision(seq.OPEN, 5, 0.1, -9, 9, 0.0, 1)
    ran = {"a": set(range(5)), "none": set(range(5))}
    assert seq.next_seeds(["a"], "none", {"a": open_}, ran, max_seeds=6) == {"a": [5], "none": [5]}
    ran = {"a": set(range(6)), "none": set(range(6))}
    assert seq.next_seeds(["a"], "none", {"a": open_}, ran, max_seeds=6) == {}


def test_a_restarted_sweep_takes_the_same_decisions():
    # Replaying the finished runs from scratch gives the same decisions and the same next seeds.
    d_a, d_b = [1.0, 2.0, 3.0, 1.5, 2.5, 2.0, 1.8], [0.5, -1.0, 2.0, 0.3, -0.8, 1.2, 0.1]
    results = results_from(d_a)
    results["b"] = {s: results["none"][s] + x for s, x in enumerate(d_b)}
    first = seq.decide_sweep(results, "none")
    again = seq.decide_sweep({name: dict(runs) for name, runs in results.items()}, "none")
    assert first == again and first["mixup"].verdict == seq.BETTER and first["b"].verdict == seq.OPEN
    ran = {name: set(runs) for name, runs in results.items()}
    assert seq.next_seeds(["mixup", "b"], "none", first, ran) == {"b": [7, 8], "none": [7, 8]}


# ---- input checks ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings, message", [
    ({"min_seeds": 1}, "hydra.sweeper.min_seeds=1 must be >= 2"),
    ({"min_seeds": 5, "max_seeds": 4}, "hydra.sweeper.max_seeds=4 must be >= hydra.sweeper.min_seeds=5"),
    ({"seeds_per_round": 0}, "hydra.sweeper.seeds_per_round=0 must be >= 1"),
    ({"smallest_effect": 0.0}, "hydra.sweeper.smallest_effect=0.0 must be > 0"),
    ({"smallest_effect": -1}, "hydra.sweeper.smallest_effect=-1 must be > 0"),
    ({"alpha": 0.0}, "hydra.sweeper.alpha=0.0 must be in (0, 1)"),
    ({"alpha": 1.5}, "hydra.sweeper.alpha=1.5 must be in (0, 1)"),
])
def test_bad_settings_name_the_key(settings, message):
    with pytest.raises(ValueError) as raised:
        seq.check_settings(**settings)
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)
    with pytest.raises(ValueError, match=message.split("=")[0]):
        seq.decide_sweep(results_from([1.0, 2.0, 3.0]), "none", **settings)
    if "alpha" not in settings and "smallest_effect" not in settings:
        with pytest.raises(ValueError, match=message.split("=")[0]):
            seq.next_seeds(["mixup"], "none", {}, {}, **settings)


# ---- simulations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("design", seq.DESIGNS)
def test_the_vectorised_simulation_takes_the_decisions_of_decide_sweep(design):
    setting = sim.Setting(k=3, noise_sd=0.5, test_size=2000, design=design)
    effects = np.array([0.0, 1.5, -2.0]) * setting.difference_sd
    base, configs = sim.simulate_accuracies(setting, 40, effects, rng_seed=1)
    out = sim.run_sequential(setting, base, configs)
    seen = set()
    for i in range(40):
        results = {"none": dict(enumerate(base[i]))}
        results.update({f"c{j}": dict(enumerate(configs[i, j])) for j in range(3)})
        decisions = seq.decide_sweep(results, "none", resolution=setting.resolution, design=design)
        for j in range(3):
            decision = decisions[f"c{j}"]
            assert decision.verdict == seq._CODES[out.code[i, j]]
            assert decision.n == out.seeds[i, j]
            assert (decision.low, decision.high) == pytest.approx((out.low[i, j], out.high[i, j]))
            seen.add(decision.verdict)
    assert {seq.BETTER, seq.WORSE, seq.WITHIN} <= seen  # the comparison covered the verdicts


def test_family_error_stays_at_alpha_and_the_naive_rule_exceeds_it():
    # K = 8 equal configurations sharing a baseline, accuracies on the 1/500 grid, looked at every round.
    setting = sim.Setting(k=8, test_size=500)
    sims = 1000
    bound = 0.05 + 3 * math.sqrt(0.05 * 0.95 / sims)  # 5 % + 3 Monte-Carlo SE = 7.1 %
    sequential = sim.error_rate(setting, sims, rng_seed=11)
    assert sequential["rate"] <= bound
    # The same test fails the fixed-n paired t-test re-run after every seed (about 24 %).
    assert sim.fixed_rerun_error_rate(setting, sims, rng_seed=11)["rate"] > bound


def test_runs_saved_reports_power_and_the_fixed_design():
    r = sim.runs_saved(2.0, sim.Setting(k=3), sims=200, rng_seed=2)
    assert r["power"] > 0.9
    assert sim.fixed_power(2.0, r["fixed_n"], 0.05 / 3) >= min(r["power"], sim.POWER_CAP)
    assert sim.fixed_power(2.0, r["fixed_n"] - 1, 0.05 / 3) < min(r["power"], 1 - 1 / 200)
    assert r["fixed_runs"] == 4 * r["fixed_n"] and r["runs_mean"] <= r["budget"] == 80
    assert 7 <= r["effect_seeds_mean"] <= 20
    null = sim.runs_saved(0.0, sim.Setting(k=3), sims=200, rng_seed=2)
    assert math.isnan(null["power"]) and null["fixed_n"] is None


def test_fixed_power_against_a_known_value():
    # Paired t-test, n = 10, effect 1 sd, two-sided 5 %: power 0.803 (the noncentral t; cf. G*Power 0.8031).
    assert sim.fixed_power(1.0, 10, 0.05) == pytest.approx(0.8031, abs=1e-3)
    assert sim.fixed_n_for_power(1.0, 0.8, 0.05) == 10


def test_main_prints_the_command_and_the_table(capsys):
    sim.main(["--sims", "50", "--k-null", "4"])
    printed = capsys.readouterr().out
    assert printed.startswith("$ python -m mixupexp.analysis.sequential_simulation --sims 50 --k-null 4")
    assert "parameters: sims=50" in printed and "| 2 sd |" in printed
