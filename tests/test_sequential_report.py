"""What a sequential summary says beside its verdicts: the model its guarantee rests on, the runs far from the
rest of their arm and the verdicts without them, the pairs Δ rests on, and the words for differences without
spread."""

import numpy as np
import pytest
import yaml

from mixupexp.analysis import outliers
from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_simulation as sim
from mixupexp.runs.report import write_summary
from mixupexp.runs.sequential_design import SWEEPER_TARGET
from mixupexp.runs.sequential_summary import verdict_lines

from .fabricate import write_arms

# The real sweep of docs/statistics.md (CIFAR-10, 5 000 images, 3 epochs): the baseline's seed 6 ended at 36.74 %.
NONE = [52.55, 50.23, 51.58, 52.31, 49.23, 50.69, 36.74]
MIXUP = [51.05, 52.02, 49.06, 46.13, 56.20, 52.49, 53.77]


def sequential_dir(tmp_path, arms, max_seeds=7):
    write_arms(tmp_path, arms, extra=lambda augment, seed, acc: {"test_images": 500})
    sweeper = {"_target_": SWEEPER_TARGET, "min_seeds": 3, "max_seeds": max_seeds, "seeds_per_round": 2,
               "smallest_effect": 1.0, "alpha": 0.05, "first_seed": 0, "params": None}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": sweeper}}))
    return write_summary([tmp_path], tmp_path, plots=False)


def test_the_outlier_rule_by_hand():
    # median 50.69; |x - median|: 1.86 0.46 0.89 1.62 1.46 0 13.95, MAD 1.46, 3.5 * 1.4826 * 1.46 = 7.58.
    assert outliers.outlying(dict(enumerate(NONE))) == [6]
    assert outliers.outlying(dict(enumerate(MIXUP))) == []
    assert outliers.outlying(dict(enumerate(NONE[:4]))) == []  # too few runs to judge


def test_summary_states_the_model_names_the_outlying_run_and_judges_without_it(tmp_path):
    summary = sequential_dir(tmp_path, {("none", 0.2, 0.2): NONE, ("mixup", 0.2, 0.2): MIXUP})
    markdown = (tmp_path / "summary.md").read_text()
    assert "independent and roughly normal" in markdown
    assert "It does not cover rare collapses" in markdown \
        and "the anytime design made a false verdict in 6.2 % of sweeps with K = 1" in markdown
    assert "augment=none seed 6: 36.74 %" in markdown and "modified z-score" in markdown
    # Without seed 6 the six pairs' differences: -1.50 +1.79 -2.52 -6.18 +6.97 +1.80.
    assert "- augment=mixup augment.alpha=0.2 augment.ratio=0.2: not settled at 6 seeds (Δ = +0.06 points over 6 " \
           "pairs" in markdown
    line = verdict_lines(summary)[0]
    assert "not settled at 7 seeds" in line and "Δ = +2.48 points over 7 pairs" in line


def test_a_clean_sweep_says_no_run_is_far(tmp_path):
    sequential_dir(tmp_path, {("none", 0.2, 0.2): NONE[:6], ("mixup", 0.2, 0.2): MIXUP[:6]}, max_seeds=5)
    assert "No run is far from the rest of its arm" in (tmp_path / "summary.md").read_text()


def test_identical_runs_are_within_and_a_spread_below_the_grid_is_not_called_the_same_difference(tmp_path):
    base = [k / 500 * 100 for k in (350, 356, 347, 351, 349)]
    summary = sequential_dir(tmp_path, {("none", 0.2, 0.2): base, ("mixup", 0.2, 0.2): base}, max_seeds=5)
    assert summary.loc[1, "verdict"] == seq.WITHIN
    # Settled at the first look, 3 pairs (the directory holds 5 runs each, made by hand).
    assert summary.loc[1, "settled_round"] == 0 and summary.loc[1, "delta_acc_n"] == 3
    assert summary.loc[1, "stopped"] == "within ±1 points after 5 seeds (identical to the baseline at every seed)"
    assert (summary.loc[1, "delta_acc_av_low"], summary.loc[1, "delta_acc_av_high"]) == (0, 0)
    # 0.4 points at 4 seeds, 0.6 at one: the sd, 0.09, is below half the grid's 0.2: not testable, not "the same".
    other = tmp_path / "other"
    shifted = [b + 0.4 for b in base[:4]] + [base[4] + 0.6]
    summary = sequential_dir(other, {("none", 0.2, 0.2): base, ("mixup", 0.2, 0.2): shifted}, max_seeds=5)
    assert summary.loc[1, "stopped"] == ("not settled at 5 seeds (the differences spread less than half a step of "
                                         "the accuracy grid: nothing to test)")
    assert seq.decide([0.0, 0.0], level=0.05).verdict == seq.OPEN  # two zero pairs are not enough to call it


def test_the_same_power_fixed_n_does_not_move_with_the_number_of_sweeps():
    two_sd = [sim.runs_saved(2.0, sim.Setting(k=3), sims=sims)["fixed_n"] for sims in (300, 1200)]
    assert two_sd[0] == two_sd[1] == sim.fixed_n_for_power(2.0, sim.POWER_CAP, 0.05 / 3)


def test_a_stopped_delta_gets_its_conditional_estimate(tmp_path):
    # Mean 1, sd 0.50 over 7 pairs: better at the third look (t = 5.33 > 4.03); the mean at the stop overstates.
    differences = [1.0, 0.5, 1.5, 1.0, 0.3, 1.7, 1.0]
    summary = sequential_dir(tmp_path, {("none", 0.2, 0.2): [50.0 + s for s in range(7)],
                                        ("mixup", 0.2, 0.2): [50.0 + s + d for s, d in enumerate(differences)]})
    assert summary.loc[1, "verdict"] == seq.BETTER
    conditional = summary.loc[1, "delta_acc_conditional"]
    assert 0 < conditional < 1.0
    assert f"{conditional:+.2f} estimated given this verdict (conditional estimate" in verdict_lines(summary)[0]


@pytest.mark.slow
def test_the_conditional_estimate_takes_out_the_bias_of_better_stops():
    from mixupexp.analysis import sequential_estimate as estimate

    design = estimate.Design(level=0.05 / 3)
    inner = estimate.Simulated(design, sims=2000)
    sd, mu = 1.41, 1.41  # a true effect of 1 sd of a paired difference
    stops = estimate.Simulated(design, sims=600, rng_seed=99)
    code, _, means, sds = stops.stops(mu, sd)
    better = code == 1
    conditional = [estimate.conditional(m, s, seq.BETTER, design, inner) for m, s in zip(means[better], sds[better])]
    raw_bias = means[better].mean() / mu - 1
    bias = np.nanmean(conditional) / mu - 1
    assert raw_bias > 0.08 and abs(bias) < 0.1 and abs(bias) < raw_bias / 2


def test_runs_saved_against_the_budget_and_the_same_power_fixed_design(tmp_path):
    from mixupexp.analysis import sequential_estimate as estimate
    from mixupexp.runs.sequential_summary import totals_line

    rng = np.random.default_rng(0)
    base = list(50 + rng.normal(0, 1, 7))
    mixup = [b + d for b, d in zip(base, rng.normal(0.5, 1.0, 7))]
    summary = sequential_dir(tmp_path, {("none", 0.2, 0.2): base, ("mixup", 0.2, 0.2): mixup})
    sd = float(np.std(np.subtract(mixup, base), ddof=1))
    design = estimate.Design(0.05, 1.0, min_seeds=3, seeds_per_round=2, max_seeds=7)  # as the sweep ran
    power = float((estimate.Simulated(design).stops(sd, sd)[0] == 1).mean())
    n = sim.fixed_n_for_power(1.0, min(power, sim.POWER_CAP), 0.05)
    assert totals_line(summary) == (
        "sequential sweep: 14 runs against the fixed design's 14 (all 2 configurations, baseline included, at "
        f"max_seeds = 7 seeds): 0 saved (0 %); against the same-power fixed design's {2 * n} ({n} seeds each, the "
        f"fixed paired t-test with this design's power at 1 sd of a paired difference, {100 * power:.0f} % "
        f"simulated): {2 * n - 14} saved")


def test_an_open_sweep_claims_no_runs_saved(tmp_path):
    # 5 of max_seeds = 7 seeds run, the comparison still open: nothing is saved until the sweep ends.
    summary = sequential_dir(tmp_path, {("none", 0.2, 0.2): NONE[:5], ("mixup", 0.2, 0.2): MIXUP[:5]})
    lines = verdict_lines(summary)
    assert lines[0].startswith("augment=mixup augment.alpha=0.2 augment.ratio=0.2: open after 5 seeds")
    assert lines[0].endswith("; 2 of its 7 seeds not run yet)") and "saved" not in lines[0]
    assert lines[-1] == ("sequential sweep, not ended (a comparison is open: the same command goes on): 10 runs so "
                         "far, at most 14 at max_seeds = 7 seeds")
    assert "10 runs so far in 2 configurations, of at most 14" in (tmp_path / "summary.md").read_text()
