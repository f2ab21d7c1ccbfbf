import math

import pandas as pd
import pytest

from mixupexp.analysis.collect import load_runs
from mixupexp.analysis.stats import (
    PAIRED,
    UNTESTED,
    WELCH,
    Comparison,
    compare_to_baseline,
    mean_ci,
    verdict,
)
from mixupexp.analysis.table import summarize_runs
from mixupexp.runs.report import write_summary

from .fabricate import write_arms, write_run

T_975_DF2 = 4.302652729911275  # two-sided 95 % quantile of Student's t with 2 degrees of freedom (tables)


def summary_of(sweep_dir) -> pd.DataFrame:
    return summarize_runs(load_runs([sweep_dir]))[1]


def test_mean_ci_known_answer():
    ci = mean_ci([1.0, 2.0, 3.0])
    sem = 1 / math.sqrt(3)
    assert (ci.n, ci.mean, ci.sem) == (3, 2.0, pytest.approx(sem))
    assert (ci.low, ci.high) == (pytest.approx(2 - T_975_DF2 * sem), pytest.approx(2 + T_975_DF2 * sem))


def test_mean_ci_small_samples():
    one = mean_ci([5.0])
    assert one.mean == 5.0 and all(math.isnan(v) for v in (one.sem, one.low, one.high))
    assert math.isnan(mean_ci([]).mean) and mean_ci([float("nan"), 4.0]).n == 1
    assert (mean_ci([2.0, 2.0, 2.0]).low, mean_ci([2.0, 2.0, 2.0]).high) == (2.0, 2.0)


def test_identical_arms_are_not_different():
    welch = compare_to_baseline([70.0, 71.0, 72.0], [72.0, 70.0, 71.0])
    assert welch.test == WELCH and welch.delta == 0 and welch.p_value == pytest.approx(1.0)
    paired = compare_to_baseline([71.0, 70.0, 72.0], [70.0, 71.0, 72.0], seeds=[0, 1, 2], baseline_seeds=[0, 1, 2])
    assert paired.test == PAIRED and paired.delta == 0 and paired.p_value == pytest.approx(1.0)
    assert verdict(welch) == "no significant difference at 5 %"


def test_clearly_separated_arms_are_significant():
    better = compare_to_baseline([75.0, 75.5, 76.0], [70.0, 70.5, 71.0])
    assert better.test == WELCH and better.delta == pytest.approx(5.0) and better.p_value < 0.01
    assert better.low > 0 and verdict(better) == "better than the baseline at 5 %"
    worse = compare_to_baseline([70.0, 70.5, 71.0], [75.0, 75.5, 76.0])
    assert worse.high < 0 and verdict(worse) == "worse than the baseline at 5 %"


def test_pairing_by_seed_removes_the_seed_effect():
    # The seed moves both arms by 10 points; the configuration adds 0.5 on top, every time.
    baseline, seeds = [60.0, 70.0, 80.0], [0, 1, 2]
    values, value_seeds = [80.48, 60.5, 70.52], [2, 0, 1]  # listed in another order: matched by seed
    paired = compare_to_baseline(values, baseline, value_seeds, seeds)
    assert paired.test == PAIRED and paired.delta == pytest.approx(0.5) and paired.p_value < 0.01
    welch = compare_to_baseline(values, baseline, [3, 4, 5], seeds)  # other seeds: nothing to pair
    assert welch.test == WELCH and welch.p_value > 0.5


def test_fewer_than_two_runs_is_untested():
    one = compare_to_baseline([75.0], [70.0, 71.0])
    assert one.test == UNTESTED and one.delta == pytest.approx(4.5) and math.isnan(one.p_value)
    assert verdict(one).startswith("not tested")
    assert verdict(Comparison(1.0, 0.5, 1.5, 0.04, WELCH)).startswith("better")


def test_summary_statistics_on_fabricated_runs(tmp_path):
    write_arms(tmp_path, {
        ("none", 0.2, 0.2): [70.0, 70.4, 69.8],
        ("mixup", 0.2, 0.2): [75.0, 75.3, 74.9],  # clearly better
        ("mixup", 0.4, 0.2): [70.4, 69.8, 70.0],  # the baseline's accuracies, by other seeds
        ("mixup", 1.0, 0.2): [60.0, 60.2, 59.9],  # clearly worse
    })
    summary = summary_of(tmp_path).set_index("augment.alpha", drop=False)
    assert summary["augment"].tolist() == ["none", "mixup", "mixup", "mixup"]
    base = summary.iloc[0]
    sem = pd.Series([70.0, 70.4, 69.8]).sem()
    assert base["acc_sem"] == pytest.approx(sem, abs=1e-4)
    assert base["acc_ci95_low"] == pytest.approx(base["acc_mean"] - T_975_DF2 * sem, abs=1e-4)
    assert math.isnan(base["delta_acc_vs_baseline"])
    assert summary.loc[0.2, "delta_acc_vs_baseline"] == pytest.approx(5.0, abs=1e-4)
    assert summary.loc[0.2, "delta_acc_p_value"] < 0.01 and summary.loc[0.2, "delta_acc_ci95_low"] > 0
    assert summary.loc[0.4, "delta_acc_p_value"] == pytest.approx(1.0)
    assert summary.loc[1.0, "delta_acc_p_value"] < 0.01 and summary.loc[1.0, "delta_acc_ci95_high"] < 0
    assert (summary["delta_acc_test"].iloc[1:] == PAIRED).all()  # every arm ran seeds 0, 1, 2

    write_summary([tmp_path], tmp_path)
    text = (tmp_path / "summary.md").read_text()
    assert "augment=mixup augment.alpha=0.2 augment.ratio=0.2: better than the baseline at 5 %" in text
    assert "augment=mixup augment.alpha=0.4 augment.ratio=0.2: no significant difference at 5 %" in text
    assert "augment=mixup augment.alpha=1.0 augment.ratio=0.2: worse than the baseline at 5 %" in text


def test_runs_with_other_seeds_are_compared_unpaired(tmp_path):
    write_arms(tmp_path / "a", {("none", 0.2, 0.2): [70.0, 70.4, 69.8]})
    for seed, acc in zip([3, 4, 5], [75.0, 75.3, 74.9]):
        write_run(tmp_path / "b" / str(seed), "mixup", seed, acc)
    summary = summary_of(tmp_path)
    assert summary["delta_acc_test"].iloc[1] == WELCH and summary["delta_acc_p_value"].iloc[1] < 0.01


def test_each_configuration_is_compared_with_the_baseline_of_its_own_settings(tmp_path):
    for seed in range(3):
        write_run(tmp_path / f"none3-{seed}", "none", seed, 50.0 + seed, epochs=3)
        write_run(tmp_path / f"none5-{seed}", "none", seed, 70.0 + seed, epochs=5)
        write_run(tmp_path / f"mixup5-{seed}", "mixup", seed, [71.0, 70.0, 72.0][seed], epochs=5)
    summary = summary_of(tmp_path)
    mixup = summary[summary["augment"] == "mixup"].iloc[0]
    assert mixup["trainer.epochs"] == 5 and mixup["delta_acc_vs_baseline"] == 0 and mixup["delta_acc_p_value"] == 1


def test_runs_written_before_calibration_and_robustness_still_summarise(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.0]})  # old results
    summary = summary_of(tmp_path)
    kept = ["n", "acc_mean", "acc_std", "acc_min", "acc_max", "test_loss_mean", "n_failed"]
    assert keeps_columns_in_order(summary, kept) and "acc_ci95_low" in summary and "nll_mean" in summary
    assert not any(c.startswith(("ece", "fgsm")) for c in summary.columns)
    assert summary["delta_acc_vs_baseline"].iloc[1] == pytest.approx(2.0)

    # New runs next to old ones: ECE and FGSM statistics over the runs that have them.
    write_run(tmp_path / "new", "mixup", 2, 72.5, extra={"test_ece": 4.0, "fgsm_acc_4": 30.0}, fgsm_eps=[4.0])
    summary = summary_of(tmp_path)
    assert len(summary) == 2  # the eval settings measure; they do not make another configuration
    mixup = summary.iloc[1]
    assert mixup["n"] == 3 and mixup["ece_mean"] == 4.0 and mixup["fgsm_acc_4_mean"] == 30.0
    assert math.isnan(mixup["ece_ci95_low"])  # one run with ECE: no interval


def keeps_columns_in_order(summary: pd.DataFrame, kept: list[str]) -> bool:
    """The summary's columns start with the parameters, then the columns summaries always had, in order."""
    columns = list(summary.columns)
    start = columns.index("n")
    return columns[start : start + len(kept)] == kept


def test_fgsm_and_ece_statistics_per_eps(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0, 72.0]},
               extra=lambda augment, seed, acc: {"test_ece": 2.0 + seed, "fgsm_acc_8": acc - 50, "fgsm_acc_1": acc - 5})
    row = summary_of(tmp_path).iloc[0]
    assert row["ece_mean"] == 3.0 and row["fgsm_acc_1_mean"] == 66.0 and row["fgsm_acc_8_mean"] == 21.0
    assert row["ece_ci95_high"] == pytest.approx(3.0 + T_975_DF2 / math.sqrt(3), abs=1e-4)
    columns = list(summary_of(tmp_path).columns)
    assert columns.index("fgsm_acc_1_mean") < columns.index("fgsm_acc_8_mean")  # by ε, not as text
    assert "delta_acc_vs_baseline" not in columns  # nothing to compare with


def test_without_a_baseline_there_are_no_verdicts(tmp_path):
    write_arms(tmp_path, {("mixup", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.4, 0.2): [72.0, 73.0]})
    summary = write_summary([tmp_path], tmp_path)
    assert "delta_acc_vs_baseline" not in summary
    assert "No baseline (augment=none) to compare with" in (tmp_path / "summary.md").read_text()


def test_failed_runs_and_single_runs(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [75.0]})
    write_run(tmp_path / "failed", "mixup", 1, 0.0, status="failed")
    write_run(tmp_path / "all-failed", "mixup", 0, 0.0, alpha=0.4, status="failed")
    summary = write_summary([tmp_path], tmp_path)
    single = summary.iloc[1]
    assert (single["n"], single["n_failed"], single["delta_acc_test"]) == (1, 1, UNTESTED)
    assert math.isnan(single["acc_ci95_low"]) and math.isnan(single["delta_acc_p_value"])
    empty = summary.iloc[2]
    assert (empty["n"], empty["n_failed"]) == (0, 1) and math.isnan(empty["acc_mean"])
    assert "1 failed" in (tmp_path / "summary.md").read_text()


def test_only_baseline_runs_have_nothing_to_compare(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0]})
    write_summary([tmp_path], tmp_path, plots=False)
    text = (tmp_path / "summary.md").read_text()
    assert "1 finished run in 1 configuration." in text and "Only baseline runs (augment=none)" in text


def test_block_list_is_a_column_only_when_swept():
    import pandas as pd

    from mixupexp.analysis.table import parameter_columns

    runs = pd.DataFrame({
        "augment": ["none", "mixup", "manifold_mixup"],
        "augment.alpha": [None, 0.2, 2.0],
        "augment.mix_after_blocks": [None, (0, 1, 2), (0, 1, 2)],
        "seed": [0, 0, 0],
        "status": ["ok"] * 3, "test_acc": [50.0, 51.0, 52.0],
    })
    assert "augment.mix_after_blocks" not in parameter_columns(runs)
    runs.loc[2, "augment.mix_after_blocks"] = (1,)
    assert "augment.mix_after_blocks" in parameter_columns(runs)
