"""The summary's judgement of a sweep: Holm-corrected verdicts, P(improvement), seeds needed, selection on the
validation split, the cases a t-test cannot judge, exact parameter values and the sweep's row order."""

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from mixupexp.analysis.collect import load_runs
from mixupexp.analysis.stats import SIGNIFICANCE, holm
from mixupexp.analysis.table import summarize_runs
from mixupexp.runs.report import verdict_lines, write_summary
from mixupexp.summarize import main

from .fabricate import write_arms, write_run


def runs_frame(arms: dict[float, np.ndarray]) -> pd.DataFrame:
    """What load_runs returns for a sweep: one row per (configuration, seed); `arms` maps mixup's α (None for
    the baseline) to accuracies by seed."""
    rows = [{"augment": "none" if alpha is None else "mixup", "augment.alpha": alpha, "augment.ratio":
             None if alpha is None else 0.2, "seed": seed, "status": "ok", "test_acc": acc, "test_loss": 1.0,
             "train_loss": 1.0, "train_seconds": 1.0, "wall_seconds": 1.0, "device": "cpu", "precision": "float32",
             "versions": "torch", "run_dir": ""}
            for alpha, accuracies in arms.items() for seed, acc in enumerate(accuracies)]
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_without_any_effect_a_sweep_of_8_rarely_gets_a_verdict():
    # 8 configurations x 3 seeds against one baseline, all runs ~ N(70, 1): no true effect anywhere.
    rng = np.random.default_rng(0)
    sweeps, alarms, raw_alarms = 100, 0, 0
    for _ in range(sweeps):
        arms = {None: rng.normal(70, 1, 3), **{alpha: rng.normal(70, 1, 3) for alpha in np.arange(1, 9) / 10}}
        summary = summarize_runs(runs_frame(arms))[1].iloc[1:]
        alarms += summary["verdict"].str.startswith(("better", "worse")).any()
        raw_alarms += (summary["delta_acc_p_value"] < SIGNIFICANCE).any()
    margin = 2 * math.sqrt(SIGNIFICANCE * (1 - SIGNIFICANCE) / sweeps)
    assert alarms / sweeps <= SIGNIFICANCE + margin  # uncorrected, about 30 % of such sweeps had one
    assert raw_alarms / sweeps > 0.15


def fabricated_summary(tmp_path, arms, **kwargs) -> pd.DataFrame:
    write_arms(tmp_path, arms, **kwargs)
    return write_summary([tmp_path], tmp_path, plots=False)


def test_verdicts_rest_on_holm_adjusted_p_values(tmp_path):
    summary = fabricated_summary(tmp_path, {
        ("none", 0.2, 0.2): [70.0, 70.4, 69.8, 70.1, 70.3],
        ("mixup", 0.1, 0.2): [75.0, 75.3, 74.9, 75.4, 75.0],
        ("mixup", 0.2, 0.2): [71.0, 70.3, 70.4, 71.0, 70.8],  # p = 0.040 alone; not after the correction
        ("mixup", 0.4, 0.2): [70.3, 69.9, 70.0, 70.0, 70.4],
    })
    compared = summary.iloc[1:]
    assert compared["delta_acc_p_holm"].tolist() == pytest.approx(holm(compared["delta_acc_p_value"]).tolist())
    borderline = compared.iloc[1]
    assert borderline["delta_acc_p_value"] < 0.05 < borderline["delta_acc_p_holm"]
    assert borderline["verdict"] == "no significant difference at 5 %" and compared.iloc[0]["verdict"].startswith("better")
    assert borderline["p_improvement"] == pytest.approx(0.8) and borderline["p_improvement_ci95_low"] < 0.8
    assert (compared["compared_with"] == "augment=none").all() and (compared["family_size"] == 3).all()
    text = (tmp_path / "summary.md").read_text()
    assert "All 3 comparisons of this summary form one family: Holm's correction over the 3 tested" in text
    assert "augment=mixup augment.alpha=0.2 augment.ratio=0.2: no significant difference at 5 % (Δ = +0.58" in text
    assert "p = 0.04, p (Holm) = 0.08" in text and "P(better) = 0.80 [" in text
    line = next(l for l in text.splitlines() if l.startswith("- augment=mixup augment.alpha=0.2") and "seeds per arm" in l)
    seeds = borderline["seeds_needed"]
    assert f"to detect Δ = +0.58 points with 80 % power, run ~{int(seeds)} seeds per arm; the 5 seeds both arms finished" in line
    assert borderline["detectable_delta"] > 0.58 and seeds > 5


def test_degenerate_comparisons_are_not_testable(tmp_path):
    summary = fabricated_summary(tmp_path, {
        ("none", 0.2, 0.2): [70.0, 71.0, 72.0],
        ("mixup", 0.2, 0.2): [71.0, 72.0, 73.0],  # +1 at every seed: a t-test would say p = 0, "better"
    })
    row = summary.iloc[1]
    assert row["verdict"].startswith("not testable") and math.isnan(row["delta_acc_p_value"])
    assert math.isnan(row["delta_acc_ci95_low"])
    text = (tmp_path / "summary.md").read_text()
    assert "not testable (every seed gave the same difference)" in text and "better than" not in text
    assert "no spread to size the next runs from" in text


def test_a_failed_run_drops_its_seed_pair_only(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 70.4, 69.8, 70.1], ("mixup", 0.2, 0.2): [71.0, 71.6, 70.5]})
    write_run(tmp_path / "failed", "mixup", 3, 0.0, status="diverged")
    row = write_summary([tmp_path], tmp_path, plots=False).iloc[1]
    assert row["delta_acc_test"] == "paired t-test" and row["n"] == 3 and row["n_failed"] == 1
    assert row["delta_acc_vs_baseline"] == pytest.approx(np.mean([1.0, 1.2, 0.7]), abs=1e-4)


def test_accuracy_intervals_are_clipped_to_percentages(tmp_path):
    summary = fabricated_summary(tmp_path, {("none", 0.2, 0.2): [99.9, 96.0, 100.0], ("mixup", 0.2, 0.2): [1.0, 0.0, 4.0]})
    assert summary["acc_ci95_high"].iloc[0] == 100.0 and summary["acc_ci95_low"].iloc[1] == 0.0
    assert "intervals of percentages clipped to [0, 100]" in (tmp_path / "summary.md").read_text()


def test_parameter_values_are_never_rounded(tmp_path):
    for seed in range(2):
        for job, lr in enumerate([1e-5, 3e-5, 0.123456789]):
            write_run(tmp_path / f"{job}-{seed}", "mixup", seed, 70.0 + job + seed / 3, config={"optimizer": {"lr": lr}})
    write_summary([tmp_path], tmp_path, plots=False)
    summary = pd.read_csv(tmp_path / "summary.csv")
    assert summary["optimizer.lr"].tolist() == [1e-5, 3e-5, 0.123456789]
    assert summary["acc_mean"].tolist() == [70.1667, 71.1667, 72.1667]  # measurements: 4 decimals
    assert "| 1e-05 |" in (tmp_path / "summary.md").read_text()


def test_rows_follow_the_sweeps_order_baseline_first(tmp_path):
    write_arms(tmp_path, {("mixup", alpha, 0.2): [70.0 + alpha, 71.0] for alpha in (0.1, 0.4, 1.0)}
               | {("none", 0.2, 0.2): [70.0, 71.0]})
    assert summarize_runs(load_runs([tmp_path]))[1]["augment.alpha"].tolist()[1:] == [0.1, 0.4, 1.0]  # sorted
    multirun = {"hydra": {"overrides": {"task": ["augment=none,mixup", "augment.alpha=0.4,0.1,1", "seed=0,1"]},
                          "sweeper": {"params": None}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    summary = write_summary([tmp_path], tmp_path, plots=False)
    assert summary["augment"].tolist() == ["none", "mixup", "mixup", "mixup"]
    assert summary["augment.alpha"].tolist()[1:] == [0.4, 0.1, 1.0]
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert runs["augment.alpha"].tolist()[2:] == [0.4, 0.4, 0.1, 0.1, 1.0, 1.0] and runs["seed"].tolist()[2:4] == [0, 1]


def test_a_presets_sweep_gives_the_order_too(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.5],
                          ("cutmix", 0.2, 0.2): [71.0, 71.5]})
    multirun = {"hydra": {"overrides": {"task": ["+experiment=methods"]},
                          "sweeper": {"params": {"augment": "none,mixup,cutmix", "seed": "0,1"}}}}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump(multirun))
    assert write_summary([tmp_path], tmp_path, plots=False)["augment"].tolist() == ["none", "mixup", "cutmix"]


VALIDATED = {  # (augment, alpha, ratio) -> test accuracies by seed
    ("none", 0.2, 0.2): [70.0, 70.4, 69.8],
    ("mixup", 0.1, 0.2): [72.0, 72.5, 71.8],  # the best test accuracy
    ("mixup", 0.4, 0.2): [71.0, 71.6, 70.7],  # the best validation accuracy
}
VALIDATION_MEANS = {"none": 55.0, 72.0: 60.0, 71.0: 65.0}  # by the seed-0 test accuracy of the arm


def validation_of(augment, seed, acc):
    arm = next(arm for arm in VALIDATED.values() if acc in arm)
    return {"val_acc": VALIDATION_MEANS["none" if augment == "none" else arm[0]] + seed, "val_loss": 1.0}


def test_selection_uses_the_validation_split(tmp_path):
    summary = fabricated_summary(tmp_path, VALIDATED, extra=validation_of)
    assert summary["val_acc_mean"].tolist() == [56.0, 61.0, 66.0]
    assert summary["selected"].tolist() == [False, False, True]
    text = (tmp_path / "summary.md").read_text()
    assert ("Selected on the validation split (best mean validation accuracy among the 2 configurations compared "
            "with augment=none): **augment=mixup augment.alpha=0.4 augment.ratio=0.2**, validation 66.00 %, test "
            "71.10 [") in text
    assert "This test accuracy is optimistic" in text
    assert "validation accuracy %" in text and "winner's curse" not in text
    assert any(line.startswith("selected on the validation split: augment=mixup augment.alpha=0.4")
               for line in verdict_lines(summary))


def test_without_a_validation_split_picking_the_best_test_accuracy_is_called_optimistic(tmp_path):
    summary = fabricated_summary(tmp_path, VALIDATED)
    assert "selected" not in summary
    text = (tmp_path / "summary.md").read_text()
    assert "No validation split: nothing but the test set tells the 2 configurations compared with augment=none " \
           "apart, so the one with the best test accuracy overstates it" in text


def test_one_candidate_needs_no_selection(tmp_path):
    fabricated_summary(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.5]})
    assert "## Selection" not in (tmp_path / "summary.md").read_text()


def test_the_summarize_command_prints_the_verdicts(tmp_path, capsys):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 70.4, 69.8], ("mixup", 0.2, 0.2): [71.0, 71.6, 70.7]})
    assert main([str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert "augment=mixup augment.alpha=0.2 augment.ratio=0.2: better than the baseline at 5 % (Δ = +1.03" in printed


def test_a_baseline_without_finished_runs_gives_no_delta_rather_than_an_empty_one(tmp_path):
    write_run(tmp_path / "none0", "none", 0, 0.0, status="running")
    write_run(tmp_path / "mixup0", "mixup", 0, 70.0)
    write_run(tmp_path / "mixup1", "mixup", 1, 71.0)
    (line,) = verdict_lines(write_summary([tmp_path], tmp_path, plots=False))
    assert "no Δ: an arm has no finished run" in line and "Δ =  points" not in line
