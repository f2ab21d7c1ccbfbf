"""The study committed under docs/results/ is the tool's own output, and goes on from where it is.

Its runs were made by the command README gives; their small files (result.json, metrics.csv, train.log, .hydra/)
are all that was committed. These tests check that the same command names exactly those runs, that a sweep copied
without its weights resumes from such files alone, and that the figures README and docs/results.md print are the
ones the runs' result.json files give.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from mixupexp import summarize
from mixupexp.records.identity import run_name

from .conftest import REPO, TINY, compose_config, run_cli

STUDY = REPO / "docs" / "results" / "seed_study"
# The command that made the committed study, as README gives it (data.root is part of a run's identity).
STUDY_COMMAND = ["experiment=seed_study", "data=image_folder", "data.root=/work/data/cifar10", "trainer.eval_every=10"]
LARGE = ("model.pt", "checkpoint.pt", "run.lock")


def committed_runs() -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(STUDY.glob("*/result.json"))}


def test_the_committed_study_holds_no_weights_and_only_finished_runs():
    runs = committed_runs()
    assert len(runs) >= 6
    assert all(result["status"] == "ok" for result in runs.values())
    assert not [p for p in STUDY.rglob("*") if p.name in LARGE or p.suffix in (".pt", ".tmp")]


@pytest.mark.parametrize("augment", ["none", "mixup"])
def test_the_readme_command_names_the_committed_runs(augment):
    # So the same command on another machine (with the data at the same path) trains none of them again.
    runs = committed_runs()
    for seed in range(3):
        name = run_name(compose_config([*STUDY_COMMAND, f"augment={augment}", f"seed={seed}"]))
        assert name in runs, f"{name} is not among the committed runs {sorted(runs)}"
        assert runs[name]["run_name"] == name


@pytest.mark.slow  # two sweeps through the command line
def test_a_sweep_copied_without_its_weights_goes_on_where_it_stopped(tmp_path):
    first = tmp_path / "here"
    run_cli(["--multirun", *TINY, "augment=none,mixup", "seed=0", f"hydra.sweep.dir={first}"], cwd=tmp_path)
    moved = tmp_path / "there"  # what rsync --exclude model.pt --exclude checkpoint.pt carries
    shutil.copytree(first, moved, ignore=shutil.ignore_patterns(*LARGE))
    assert not list(moved.rglob("model.pt"))
    results = {p: p.read_text() for p in moved.glob("*/result.json")}
    command = ["--multirun", *TINY, "augment=none,mixup", "seed=0,1", f"hydra.sweep.dir={moved}"]
    plan = run_cli(command, cwd=tmp_path, module="mixupexp.plan").stdout
    assert plan.count(": finished") == 2 and plan.count(": new") == 2
    run_cli(command, cwd=tmp_path)
    assert {p: p.read_text() for p in results} == results  # the copied runs were not trained again
    assert all("not run again" in (p.parent / "train.log").read_text().splitlines()[-1] for p in results)
    assert len(list(moved.glob("*_seed1_*/result.json"))) == 2


def summarized(tmp_path: Path, capsys, names=None) -> tuple[Path, list[str]]:
    """A copy of the committed study (only the runs `names`, without the sweep's own files, when given),
    summarised by `python -m mixupexp.summarize`: its directory and the verdict lines it printed."""
    copy = tmp_path / "study"
    if names is None:
        shutil.copytree(STUDY, copy, ignore=shutil.ignore_patterns("summary*", "runs.csv", "*.png"))
    else:
        for name in names:
            shutil.copytree(STUDY / name, copy / name)
    capsys.readouterr()
    assert summarize.main([str(copy), "--no-plots"]) == 0
    out = capsys.readouterr().out
    return copy, [line for line in out.splitlines() if line.startswith("augment=mixup")]


def headline(summary: pd.DataFrame, augment: str) -> str:
    row = summary[summary["augment"] == augment].iloc[0]
    return f"{row['acc_mean']:.2f} ± {row['acc_std']:.2f} % (n = {int(row['n'])})"


def assert_in_the_docs(copy: Path, verdicts: list[str]) -> None:
    """README's headline (mean ± sd, n) of each arm, the one verdict line, and docs/results.md's row of every run
    (accuracy, NLL, ECE) are what the summary of `copy` says."""
    readme, results = (REPO / "README.md").read_text(), (REPO / "docs" / "results.md").read_text()
    summary = pd.read_csv(copy / "summary.csv")
    for augment in ("none", "mixup"):
        assert headline(summary, augment) in readme
    assert len(verdicts) == 1 and verdicts[0] in readme and verdicts[0] in results
    for _, run in pd.read_csv(copy / "runs.csv").iterrows():
        row = f"| {run['augment']} | {run['seed']} | {run['test_acc']:.2f} | {run['test_loss']:.3f} | {run['test_ece']:.2f} |"
        assert row in results, row


def test_the_fixed_study_in_the_docs_is_what_summarize_computes(tmp_path, capsys):
    # Seeds 0-2 of each arm, as experiment=seed_study ran them.
    fixed = sorted(name for name in committed_runs() if int(name.split("_seed")[1].split("_")[0]) < 3)
    assert len(fixed) == 6
    assert_in_the_docs(*summarized(tmp_path, capsys, fixed))


def test_the_sequential_answer_in_the_docs_is_what_summarize_computes(tmp_path, capsys):
    # The whole directory, with the sequential sweep's own files (multirun.yaml, sequential.json, family.json).
    assert_in_the_docs(*summarized(tmp_path, capsys))


# ---- the racing study of docs/tuning.md ---------------------------------------------------------------------

RACING = REPO / "docs" / "results" / "tune_racing"
RACING_STUDIES = {"fixed, 3 seeds a trial, 8 trials": "fixed", "racing 1-3 seeds, 8 trials": "racing13_8",
                  "racing 1-3 seeds, 12 trials": "racing13_12", "racing 1-5 seeds, 11 trials": "racing15_11"}


def fresh_test_accuracy(trial_values) -> tuple[float, float]:
    """Mean and sd of the test accuracy, on fresh seeds 100-105, of the configuration with these values."""
    record = json.loads((RACING / "racing13_12" / "tune.json").read_text())
    number = next(t["number"] for t in record["trials"] if t["values"] == trial_values)
    accuracies = pd.Series([json.loads(p.read_text())["test_acc"]
                            for p in (RACING / "fresh" / f"trial{number}").glob("*/result.json")])
    assert len(accuracies) == 6
    return accuracies.mean(), accuracies.std()


def test_the_racing_study_of_docs_tuning_recomputes_from_its_runs():
    """docs/tuning.md's table of the four real studies: each row's runs, chosen trial and fresh-seed accuracy, and
    every stop of each race, from the committed result.json files alone."""
    from mixupexp.runs.tune_design import Record
    from mixupexp.runs.tune_report import race_of

    docs = (REPO / "docs" / "tuning.md").read_text()
    for label, folder in RACING_STUDIES.items():
        row = next(line for line in docs.splitlines() if line.startswith(f"| {label} |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        record = Record.read(RACING / folder)
        assert int(cells[1]) == len(record.trials)
        assert int(cells[2]) == sum(len(t.runs) for t in record.trials)
        assert int(cells[3]) == len(record.confirm["runs"])
        assert cells[5].startswith(f"{record.chosen} (")
        chosen = next(t for t in record.trials if t.number == record.chosen)
        assert cells[6] == f"{chosen.objective:.2f} %"
        mean, sd = fresh_test_accuracy(chosen.values)
        assert cells[7] == f"{mean:.2f} ± {sd:.2f} %"
        race = race_of(record, RACING / folder)
        if race is not None:  # the race replayed from the runs stops every trial where the sweep recorded it
            assert {n: e.stop for n, e in race.entries.items()} == {t.number: t.stop for t in record.trials}
            assert race.incumbent == record.chosen


def test_readmes_tuning_example_is_what_summarize_prints_from_the_committed_runs(tmp_path, capsys):
    """README's worked example of a tuning study prints what `python -m mixupexp.summarize` prints again from the
    study's committed small files (a copy: the summary rewrites its directory's report)."""
    copy = tmp_path / "racing13_12"
    shutil.copytree(RACING / "racing13_12", copy)
    assert summarize.main([str(copy), "--no-plots"]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("wrote ")]
    readme = (REPO / "README.md").read_text()
    block = readme.split("**Worked example** (CIFAR-10", 1)[1].split("```\n", 3)[2].split("```", 1)[0]
    assert block.strip().splitlines() == printed
