"""What a summary claims, checked through `write_summary` / `python -m mixupexp.summarize` on fabricated runs:
degenerate k/N accuracies, one family per summary, pairs that survive failed runs, labelled P(better), Δ and its
n from the same runs, and a selection that says it is optimistic."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixupexp.analysis.stats import SIGNIFICANCE
from mixupexp.analysis.table import summarize_runs
from mixupexp.runs.report import write_summary
from mixupexp.summarize import main

from .fabricate import write_run
from .test_summary_verdicts import runs_frame


def k_of_n(correct: list[int], n: int = 500) -> list[float]:
    return [k / n * 100 for k in correct]


def test_a_constant_difference_of_whole_test_images_is_not_testable(tmp_path):
    for seed, (base, mix) in enumerate(zip(k_of_n([350, 356, 347]), k_of_n([352, 358, 349]))):
        write_run(tmp_path / f"none{seed}", "none", seed, base, extra={"test_images": 500})
        write_run(tmp_path / f"mixup{seed}", "mixup", seed, mix, extra={"test_images": 500})
    row = write_summary([tmp_path], tmp_path, plots=False).iloc[1]
    assert row["verdict"].startswith("not testable") and math.isnan(row["delta_acc_p_value"])
    text = (tmp_path / "summary.md").read_text()
    assert "1000 seeds" not in text and "≥ 0.00" not in text


def test_one_family_per_summary_across_baselines_by_default(tmp_path):
    # 2 lr values x (none + 2 mixup configurations): two baselines, four comparisons
    for lr in (1e-3, 1e-2):
        for augment, alpha, accs in (("none", 0.2, [70, 71, 69]), ("mixup", 0.2, [71, 73, 70]),
                                     ("mixup", 0.4, [70.5, 71.2, 69.4])):
            for seed, acc in enumerate(accs):
                write_run(tmp_path / f"{lr}_{augment}_{alpha}_{seed}", augment, seed, acc + (lr > 2e-3), alpha,
                          config={"optimizer": {"lr": lr}})
    summary = write_summary([tmp_path], tmp_path, plots=False)
    compared = summary[summary["augment"] != "none"]
    assert compared["family_size"].tolist() == [4, 4, 4, 4]
    assert str(summary["family_size"].dtype) in ("Int64", "int64")
    text = (tmp_path / "summary.md").read_text()
    assert "All 4 comparisons of this summary form one family" in text
    per_baseline = tmp_path / "per_baseline"
    assert main([str(tmp_path), "--out", str(per_baseline), "--no-plots", "--families", "baseline"]) == 0
    assert (per_baseline / "summary.md").read_text().count("form one family") == 2


def test_failed_runs_drop_out_of_the_pairs_not_the_design(tmp_path):
    # baseline seeds 0-2 finished, 3-4 failed; mixup 2-4 finished, 0-1 failed: one common seed
    for seed in range(5):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + seed * 0.3, status="ok" if seed < 3 else "failed")
        write_run(tmp_path / f"mix{seed}", "mixup", seed, 72 + seed * 0.3, status="ok" if seed >= 2 else "failed")
    row = write_summary([tmp_path], tmp_path, plots=False).iloc[1]
    assert row["delta_acc_test"] == "Welch t-test" and row["delta_acc_n"] == 3
    assert "fewer than 2 seeds finished in both arms" in row["delta_acc_note"]
    assert row["delta_acc_vs_baseline"] == pytest.approx(np.mean([72.6, 72.9, 73.2]) - np.mean([70, 70.3, 70.6]))


def test_a_seed_one_arm_lacks_leaves_the_others_paired(tmp_path):
    rng = np.random.default_rng(3)
    shift = rng.normal(0, 3, 6)
    for seed in range(6):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + shift[seed] + rng.normal(0, 0.2))
        if seed < 5:  # mixup lacks seed 5
            write_run(tmp_path / f"mix{seed}", "mixup", seed, 71 + shift[seed] + rng.normal(0, 0.2))
    row = write_summary([tmp_path], tmp_path, plots=False).iloc[1]
    assert row["delta_acc_test"] == "paired t-test" and row["delta_acc_n"] == 5
    assert row["verdict"].startswith("better")
    text = (tmp_path / "summary.md").read_text()
    assert "paired on the 5 seeds both arms finished, leaving out 1" in text


def test_p_better_says_which_probability_it_is(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + seed)
        write_run(tmp_path / f"mix{seed}", "mixup", seed, 70.5 + seed)
    row = write_summary([tmp_path], tmp_path, plots=False).iloc[1]
    assert row["p_improvement_kind"] == "paired: share of seeds won"
    assert row["p_improvement"] == 1.0 and row["p_improvement_ci95_low"] < 0.5  # 3 of 3 wins prove little
    assert "share of seeds won" in (tmp_path / "summary.md").read_text()


def test_delta_intervals_adjusted_to_the_verdicts_are_shown(tmp_path):
    rng = np.random.default_rng(0)
    arms = {None: 70 + rng.normal(0, 1, 5), 0.1: 72 + rng.normal(0, 1, 5), 0.4: 70 + rng.normal(0, 1, 5)}
    summary = summarize_runs(runs_frame(arms))[1]
    compared = summary.iloc[1:]
    plain = compared["delta_acc_ci95_high"] - compared["delta_acc_ci95_low"]
    adjusted = compared["delta_acc_simultaneous_high"] - compared["delta_acc_simultaneous_low"]
    assert (adjusted > plain).all()  # at 1 - 0.05/2 each
    assert compared["delta_acc_simultaneous_confidence"].tolist() == pytest.approx([1 - SIGNIFICANCE / 2] * 2)


def test_the_selected_configuration_is_said_to_be_optimistic_with_the_bound_and_the_confirming_command(tmp_path):
    rng = np.random.default_rng(1)
    for seed in range(3):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + rng.normal(), extra={"val_acc": 70 + rng.normal()})
        for alpha in (0.1, 0.2, 0.4):
            write_run(tmp_path / f"m{alpha}_{seed}", "mixup", seed, 70 + rng.normal(), alpha,
                      extra={"val_acc": 70 + rng.normal()})
    from mixupexp.analysis.table import expected_maximum

    summary = write_summary([tmp_path], tmp_path, plots=False)
    text = (tmp_path / "summary.md").read_text()
    assert "played no part in the choice" not in text
    assert "optimistic" in text and "seed=3,4,5" in text and "python -m mixupexp.train --multirun" in text
    chosen = summary[summary["selected"].fillna(False).astype(bool)].iloc[0]
    bound = expected_maximum(3) * chosen["val_acc_sd_pooled"] / math.sqrt(3)
    assert f"+{bound:.2f} points" in text


def test_expected_maximum_of_normals_matches_a_simulation():
    from mixupexp.analysis.table import expected_maximum

    draws = np.random.default_rng(0).standard_normal((200_000, 8)).max(axis=1)
    assert expected_maximum(8) == pytest.approx(draws.mean(), abs=4 * draws.std() / math.sqrt(len(draws)))
    assert expected_maximum(1) == pytest.approx(0.0, abs=1e-9)


def test_repeated_looks_are_named_in_the_summary(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + seed)
        write_run(tmp_path / f"mix{seed}", "mixup", seed, 70.4 + seed * 1.1)
    write_summary([tmp_path], tmp_path, plots=False)
    text = (tmp_path / "summary.md").read_text()
    assert "hydra/sweeper=sequential" in text and "re-summarising" in text


def test_runs_on_generated_data_or_of_one_epoch_carry_a_caveat(tmp_path, capsys):
    for seed in range(3):
        write_run(tmp_path / f"none{seed}", "none", seed, 70 + seed, epochs=1, config={"data": {"name": "synthetic"}})
        write_run(tmp_path / f"mix{seed}", "mixup", seed, 60 + 1.3 * seed, epochs=1, config={"data": {"name": "synthetic"}})
    assert main([str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "worse than the baseline" in printed
    assert "Caveat: every run is on generated data" in printed and "Caveat: 1 epoch per run" in printed
    assert "Caveat: every run is on generated data" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_the_selection_bound_holds_in_simulated_sweeps_through_the_real_selection():
    from mixupexp.analysis.stats_simulation import selection_bias

    measured = selection_bias(30, np.random.default_rng(5))
    assert measured["bias"] > 3 * measured["bias_se"]  # the winner's curse is real: the choice is optimistic
    assert measured["bias"] <= measured["bound"] + 3 * measured["bias_se"]
