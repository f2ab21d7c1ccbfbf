"""The family of a sequential sweep's directory: one error budget over every comparison of the sweep, across
baselines; recorded at the first command and only grown, so that a command with fewer configurations, and the
summary of the directory, keep judging at alpha / K for every configuration ever compared there."""

import json

import pytest
import yaml

from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_simulation as sim
from mixupexp.runs import sequential_family
from mixupexp.runs.report import write_summary
from mixupexp.runs.sequential_design import SWEEPER_TARGET, Design, Runs
from mixupexp.runs.sequential_settings import Settings

from .conftest import TINY, compose_config
from .fabricate import write_arms

# 7 seeds, then 2: the first look is at 7 pairs, where t* is 4.03 at 5 % and 5.79 at 5 %/2 (inf at 5 %/8).
SETTINGS = Settings(min_seeds=7, max_seeds=9, design=seq.ANYTIME)  # the worked numbers are the anytime design's
# Mean 1, sd 0.50 over 7 pairs: t = 5.33, better at 5 %, open at 5 %/2 and below.
DIFFERENCES = [1.0, 0.5, 1.5, 1.0, 0.3, 1.7, 1.0]


def design_of(sweep_dir, jobs):
    return Design.build(SETTINGS, sweep_dir, [(o, compose_config([*TINY, *o])) for o in jobs])


def runs_of(design, differences=DIFFERENCES):
    """Every compared arm `differences` above its baseline, seed by seed."""
    runs = Runs()
    for family in design.families:
        for seed, d in enumerate(differences):
            runs.accuracy[(family.baseline.key, seed)] = 50.0 + seed
            for arm in family.members:
                runs.accuracy[(arm.key, seed)] = 50.0 + seed + d
    return runs


def mixup(alpha, *extra):
    return ["augment=mixup", f"augment.alpha={alpha}", *extra]


def test_comparisons_with_two_baselines_share_one_budget(tmp_path):
    jobs = [[*arm, f"optimizer.lr={lr}"] for lr in (0.01, 0.001) for arm in (["augment=none"], mixup(0.2))]
    design = design_of(tmp_path, jobs)
    assert len(design.families) == 2 and design.compared == 2
    decisions = design.decisions(runs_of(design))
    # Each family of one alone would be judged at 5 % and call it better; sweep-wide each is at 5 %/2: open.
    assert {d.verdict for d in decisions.values()} == {seq.OPEN}
    assert seq.decide(DIFFERENCES, level=0.05).verdict == seq.BETTER


def test_a_command_with_fewer_configurations_keeps_the_directorys_family(tmp_path):
    everything = [["augment=none"], *(mixup(a) for a in (0.1, 0.2, 0.5, 1.0))]
    first = design_of(tmp_path, everything)
    assert sequential_family.join(first, write=True) is None
    recorded = json.loads((tmp_path / sequential_family.FAMILY_FILE).read_text())
    assert recorded["k"] == 4 and [c["configuration"] for c in recorded["compared"]][0] == "augment=mixup " \
        "augment.alpha=0.1"

    pruned = design_of(tmp_path, [["augment=none"], mixup(0.5)])
    line = sequential_family.join(pruned, write=True)
    assert line == (f"{tmp_path} has compared 4 configurations and this command compares 1: every comparison is "
                    f"judged at 5 %/4 (K = every configuration ever compared in this directory, family.json), not "
                    "5 %/1")
    assert pruned.k == 4
    (decision,) = pruned.decisions(runs_of(pruned)).values()
    assert decision.verdict == seq.OPEN  # at 5 %/1 it would be better: the pruned command may not lower the bar
    # A later command adding a configuration grows the family; none shrinks it.
    grown = design_of(tmp_path, [["augment=none"], mixup(2.0)])
    assert sequential_family.join(grown, write=True) is not None and grown.k == 5
    assert json.loads((tmp_path / sequential_family.FAMILY_FILE).read_text())["k"] == 5
    # A dry run reads the family but writes nothing.
    other = tmp_path / "other"
    other.mkdir()
    assert sequential_family.join(design_of(other, everything), write=False) is None
    assert not (other / sequential_family.FAMILY_FILE).exists()


def test_summarize_judges_at_the_recorded_family(tmp_path):
    differences = DIFFERENCES
    write_arms(tmp_path, {("none", 0.2, 0.2): [50.0 + s for s in range(7)],
                          ("mixup", 0.2, 0.2): [50.0 + s + d for s, d in enumerate(differences)]})
    sweeper = {"_target_": SWEEPER_TARGET, "min_seeds": 7, "max_seeds": 9, "seeds_per_round": 2,
               "smallest_effect": 1.0, "alpha": 0.05, "first_seed": 0, "params": None}
    (tmp_path / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"sweeper": sweeper}}))
    alone = write_summary([tmp_path], tmp_path, plots=False)
    assert alone.loc[1, "verdict"] == seq.BETTER and alone.loc[1, "family_size"] == 1
    sequential_family.record(tmp_path, {f"key{i}": f"configuration {i}" for i in range(4)})
    kept = write_summary([tmp_path], tmp_path, plots=False)
    assert kept.loc[1, "verdict"] == seq.OPEN and kept.loc[1, "family_size"] == 4


def test_an_unreadable_family_is_one_line(tmp_path):
    (tmp_path / sequential_family.FAMILY_FILE).write_text("{not json")
    with pytest.raises(Exception, match=r"family.json cannot be read .*; restore it"):
        sequential_family.recorded(tmp_path)


def test_pruning_to_the_best_keeps_the_error_at_alpha_only_with_the_directorys_family():
    setting = sim.Setting(k=8)
    kept = sim.pruned_error_rate(setting, sims=1500, prune_after_round=0, keep_family=True)
    lowered = sim.pruned_error_rate(setting, sims=1500, prune_after_round=0, keep_family=False)
    assert kept["rate"] <= setting.alpha
    assert lowered["rate"] > kept["rate"] + 2 * lowered["se"]


def test_a_tuning_study_splits_its_alpha_over_its_confirmations(tmp_path):
    from mixupexp.runs.tune_design import confirmation_alpha

    assert confirmation_alpha(tmp_path, 3, 0.05) == pytest.approx(0.025)
    for trial, level in ((3, 0.025), (7, 0.0125)):  # a later best trial: half of what is left
        (tmp_path / f"confirm-trial{trial}").mkdir()
        (tmp_path / f"confirm-trial{trial}" / "multirun.yaml").write_text(
            yaml.safe_dump({"hydra": {"sweeper": {"alpha": level}}}))
    assert confirmation_alpha(tmp_path, 3, 0.05) == 0.025  # started before: keeps its level
    assert confirmation_alpha(tmp_path, 11, 0.05) == pytest.approx(0.00625)
    # Four confirmations of equal configurations: within alpha split, far above it at alpha each.
    split = sim.confirmations_error_rate(sim.Setting(k=1, noise_sd=0.3), sims=1500, confirmations=4)
    each = sim.confirmations_error_rate(sim.Setting(k=1, noise_sd=0.3), sims=1500, confirmations=4, split=False)
    assert split["rate"] <= 0.05 and each["rate"] > split["rate"] + 2 * each["se"]
