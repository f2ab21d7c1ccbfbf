"""hydra/sweeper=tune: the search space read from Hydra's sweep grammar, the refusals, the objective (the mean
validation accuracy of a trial's runs, never the test set), a study end to end through the command line with its
confirmation on fresh seeds, and a study killed and started again."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from mixupexp.config.schema import ConfigError
from mixupexp.runs.tune_space import CHOICE, FLOAT, INT, read_space

from .conftest import REPO, TINY, run_cli
from .sweep_callbacks import INTERRUPT_JOB_ENV, INTERRUPT_JOB_TARGET

pytest.importorskip("optuna")

QUICK = [*TINY, "eval.fgsm_eps=[]", "trainer.threads=1", "trainer.precision=fp32", "data.val_size=64"]
SPACE = ["augment=mixup", "augment.alpha=interval(0.05,2.0)", "augment.ratio=interval(0.05,1.0)"]
STUDY = ["--multirun", "hydra/sweeper=tune", *SPACE, *QUICK, "hydra.sweeper.racing=false", "hydra.sweeper.n_trials=3",
         "hydra.sweeper.seeds_per_trial=2", "hydra.sweeper.confirm.max_seeds=4"]


# ---- the space ---------------------------------------------------------------------------------------------


def test_the_space_reads_hydras_sweep_grammar():
    space = read_space(["augment=mixup", "augment.alpha=interval(0.05,2.0)",
                        "optimizer.lr=tag(log,interval(1e-4,1e-1))", "trainer.epochs=tag(int,interval(1,4))",
                        "augment.ratio=choice(0.1,0.2)", "model.hidden=range(16,64,16)", "hydra.sweeper.n_trials=5",
                        "hydra/sweeper=tune"])
    by_key = {p.key: p for p in space.parameters}
    assert space.fixed == ["augment=mixup"]  # hydra.* overrides are Hydra's, not the space's
    alpha, epochs = by_key["augment.alpha"], by_key["trainer.epochs"]
    assert (alpha.kind, alpha.low, alpha.high) == (FLOAT, 0.05, 2.0)
    assert by_key["optimizer.lr"].log and by_key["optimizer.lr"].low == 1e-4
    assert (epochs.kind, epochs.low, epochs.high) == (INT, 1, 4)
    assert by_key["augment.ratio"].kind == CHOICE and by_key["augment.ratio"].choices == ("0.1", "0.2")
    # Hydra's range leaves out its end, as Python's does: 16, 32, 48.
    assert by_key["model.hidden"].grid() == [16, 32, 48]
    values = {"augment.alpha": 0.3, "optimizer.lr": 0.001, "trainer.epochs": 2, "augment.ratio": "0.2",
              "model.hidden": 32}
    assert space.trial_overrides(values) == ["augment=mixup", "augment.alpha=0.3", "optimizer.lr=0.001",
                                             "trainer.epochs=2", "augment.ratio=0.2", "model.hidden=32"]


def test_the_ends_of_the_space_are_what_gets_checked():
    space = read_space(["augment.alpha=interval(0.05,2.0)", "augment.ratio=choice(0.1,0.5,1.0)"])
    assert space.corner_overrides() == [["augment.alpha=0.05", "augment.ratio=0.1"],
                                        ["augment.alpha=2.0", "augment.ratio=0.1"],
                                        ["augment.alpha=0.05", "augment.ratio=0.5"],
                                        ["augment.alpha=0.05", "augment.ratio=1.0"]]


@pytest.mark.parametrize("override, message", [
    ("augment.alpha=interval(2.0,0.05)", "the interval is empty or inverted"),
    ("augment.alpha=interval(1.0,1.0)", "the interval is empty (its ends are equal)"),
    ("optimizer.lr=tag(log,interval(0,0.1))", "a log-scale interval needs a low end > 0"),
    ("model.hidden=range(64,16)", "the range is empty"),
    ("augment.ratio=choice(0.1,0.1)", "a value is listed twice"),
    ("seed=0,1", "cannot be given with hydra/sweeper=tune"),
    ("augment=mixup", "needs a space to search"),
])
def test_a_space_that_cannot_be_searched_is_one_line(override, message):
    with pytest.raises(ConfigError) as info:
        read_space([override] + ([] if "seed" in override or override == "augment=mixup" else ["augment=mixup"]))
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("extra, message", [
    ([], "hold out a validation split, e.g. data.val_size=5000"),
    (["data.val_size=64", "augment=none"], "augment.alpha has no effect with augment=none"),
    (["data.val_size=64", "hydra.sweeper.seeds_per_trial=0"], "seeds_per_trial=0 must be an integer >= 1"),
    (["data.val_size=64", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 must be an integer >= 1"),
    (["data.val_size=64", "hydra.sweeper.sampler=grid"], "which hydra.sweeper.sampler=grid cannot list"),
    (["data.val_size=64", "augment.ratio=interval(0.5,1.5)"], "augment.ratio=1.5 must be in [0, 1]"),
    (["data.val_size=64", "hydra.sweeper.confirm.min_seeds=1"], "hydra.sweeper.confirm.min_seeds=1 must be >= 2"),
    # racing's keys, each named in its one line
    (["data.val_size=64", "hydra.sweeper.min_seeds_per_trial=0"],
     "hydra.sweeper.min_seeds_per_trial=0 must be an integer >= 1"),
    (["data.val_size=64", "hydra.sweeper.min_seeds_per_trial=3", "hydra.sweeper.max_seeds_per_trial=2"],
     "hydra.sweeper.max_seeds_per_trial=2 must be an integer >= hydra.sweeper.min_seeds_per_trial (3)"),
    (["data.val_size=64", "hydra.sweeper.tune_tolerance=-0.5"], "hydra.sweeper.tune_tolerance=-0.5 must be a number >= 0"),
])
def test_bad_input_is_refused_before_anything_runs(tmp_path, capsys, extra, message):
    from mixupexp.runs.command_plan import check_command_line

    argv = ["--multirun", "hydra/sweeper=tune", "augment=mixup", "augment.alpha=interval(0.05,2.0)", *TINY, *extra,
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    with pytest.raises(SystemExit) as info:
        check_command_line(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "sweep").exists()


def test_the_command_line_refuses_a_study_without_validation_in_one_line(tmp_path):
    proc = run_cli(["--multirun", "hydra/sweeper=tune", *SPACE, *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                   cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: hydra/sweeper=tune tunes on validation accuracy and the test set stays out of the search: hold out "
        "a validation split, e.g. data.val_size=5000 (of CIFAR-10's 50 000 training images; data=synthetic: "
        "data.val_size=200)"]
    assert not (tmp_path / "sweep").exists()


def test_without_optuna_the_study_is_one_line_naming_the_extra(monkeypatch):
    from mixupexp.runs.tune_sweep import import_optuna

    monkeypatch.setitem(sys.modules, "optuna", None)
    with pytest.raises(ConfigError, match=r'needs Optuna, which is not installed; install it with pip install -e '
                                          r'"\.\[tune\]"'):
        import_optuna()


def test_hydra_finds_the_tune_sweeper_and_the_preset_composes(tmp_path):
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    from mixupexp.config.compose import compose_config as compose_with_hydra
    from mixupexp.runs.command_plan import plan_command
    from mixupexp.runs.tune_design import SWEEPER_TARGET

    assert SWEEPER_TARGET in {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    cfg = compose_with_hydra(["hydra/sweeper=tune", "hydra.sweeper.n_trials=5"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert (sweeper._target_, sweeper.n_trials, sweeper.seeds_per_trial, sweeper.sampler) == (
        SWEEPER_TARGET, 5, 3, "tpe")
    assert (sweeper.racing, sweeper.min_seeds_per_trial, sweeper.max_seeds_per_trial, sweeper.tune_tolerance) == (
        True, 1, 3, 0.5)  # racing is the default: measured better (docs/tuning.md)
    plan = plan_command(["experiment=tune_mixup", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"], check_data=False)
    assert plan.sweep.space.text() == "augment.alpha in [0.05, 2]; augment.ratio in [0.05, 1]"
    assert plan.sweep.corners[0][1].data.val_size == 5000 and plan.jobs == []


# ---- the objective -----------------------------------------------------------------------------------------


class NoTestResult(dict):
    """A result.json whose test-set numbers cannot be read: reading one fails the test."""

    def _check(self, key):
        if str(key).startswith("test"):
            raise AssertionError(f"the search read {key}")

    def __getitem__(self, key):
        self._check(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self._check(key)
        return super().get(key, default)


def test_a_trial_is_judged_by_its_runs_mean_validation_accuracy_and_never_reads_the_test_set(tmp_path, monkeypatch):
    import mixupexp.runs.tune_sweep as tune_sweep
    from mixupexp.runs.tune_design import COMPLETE, FAILED, Trial

    search = tmp_path / "search"
    runs = tune_sweep.TrialRuns(config=None, config_loader=None, search_dir=search, seeds=3)
    overrides = ["augment=mixup", "augment.alpha=0.3"]
    runs._dirs[tuple(overrides)] = [search / f"run{seed}" for seed in range(3)]  # named as composed elsewhere
    for seed, (val, test) in enumerate([(61.25, 99.0), (58.5, 1.0), (60.0, 50.0)]):
        (search / f"run{seed}").mkdir(parents=True)
        (search / f"run{seed}" / "result.json").write_text(json.dumps(
            {"status": "ok", "val_acc": val, "test_acc": test, "config": {"seed": seed}}))
    real = tune_sweep.read_result
    monkeypatch.setattr(tune_sweep, "read_result", lambda path: NoTestResult(real(path)))
    trial = Trial(0, {"augment.alpha": 0.3}, overrides)
    runs.read(trial)
    assert trial.state == COMPLETE
    assert trial.objective == (61.25 + 58.5 + 60.0) / 3
    assert [run["val_acc"] for run in trial.runs] == [61.25, 58.5, 60.0]
    # One failed seed fails the trial: a mean over fewer seeds would not compare with the other trials'.
    (search / "run1" / "result.json").write_text(json.dumps({"status": "diverged", "error": "loss is nan",
                                                            "config": {"seed": 1}}))
    runs.read(trial)
    assert trial.state == FAILED and trial.objective is None and "seed 1: diverged" in trial.why


def test_a_trial_with_some_seeds_finished_is_not_told_a_partial_mean(tmp_path):
    import mixupexp.runs.tune_sweep as tune_sweep
    from mixupexp.runs.tune_design import COMPLETE, RUNNING, Trial

    search = tmp_path / "search"
    runs = tune_sweep.TrialRuns(config=None, config_loader=None, search_dir=search, seeds=3)
    overrides = ["augment=mixup", "augment.alpha=0.3"]
    runs._dirs[tuple(overrides)] = [search / f"run{seed}" for seed in range(3)]
    trial = Trial(0, {"augment.alpha": 0.3}, overrides)
    for seed, val in enumerate([61.25, 58.5, 60.0]):
        (search / f"run{seed}").mkdir(parents=True)
        (search / f"run{seed}" / "result.json").write_text(json.dumps(
            {"status": "ok", "val_acc": val, "test_acc": 50.0, "config": {"seed": seed}}))
        runs.read(trial)
        # Until the last seed has finished, the trial is running and has no objective to tell the study.
        expected = (COMPLETE, (61.25 + 58.5 + 60.0) / 3) if seed == 2 else (RUNNING, None)
        assert (trial.state, trial.objective) == expected


# ---- a study through the command line ----------------------------------------------------------------------


def val_acc(run_dir):
    return json.loads((run_dir / "result.json").read_text())["val_acc"]


def trial_values(sweep):
    return [trial["values"] for trial in json.loads((sweep / "tune.json").read_text())["trials"]]


def stamps(directory):
    """mtimes of the runs' train.log: a run launched again, even one found finished, logs to it."""
    return {p: p.stat().st_mtime_ns for p in directory.glob("*/train.log")}


@pytest.mark.slow
def test_a_study_end_to_end_objectives_by_hand_then_the_best_on_fresh_seeds(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli([*STUDY, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    record = json.loads((sweep / "tune.json").read_text())
    trials = record["trials"]
    assert [t["number"] for t in trials] == [0, 1, 2] and {t["state"] for t in trials} == {"complete"}
    for trial in trials:  # the objective is the mean of that trial's runs, seeds 0 and 1, read by hand
        assert [run["seed"] for run in trial["runs"]] == [0, 1]
        by_hand = sum(val_acc(sweep / run["run_dir"]) for run in trial["runs"]) / 2
        assert trial["objective"] == pytest.approx(by_hand, abs=1e-12)
        for run in trial["runs"]:
            result = json.loads((sweep / run["run_dir"] / "result.json").read_text())
            assert result["config"]["augment"]["alpha"] == trial["values"]["augment.alpha"]
    best = max(trials, key=lambda t: t["objective"])
    assert record["chosen"] == best["number"]
    table = pd.read_csv(sweep / "trials.csv")
    assert list(table["objective"]) == pytest.approx([t["objective"] for t in trials])
    assert not [c for c in table if "test" in c]  # the search's table holds no test-set number
    # The confirmation: the chosen configuration and augment=none on seeds 2.. (never the search's 0-1).
    confirm = sweep / record["confirm"]["dir"]
    fresh = [json.loads(p.read_text()) for p in confirm.glob("*/result.json")]
    assert {r["config"]["seed"] for r in fresh} == {2, 3, 4, 5}
    assert {r["config"]["augment"]["name"] for r in fresh} == {"mixup", "none"}
    chosen_fresh = [r["val_acc"] for r in fresh if r["config"]["augment"]["name"] == "mixup"]
    assert {r["config"]["augment"]["alpha"] for r in fresh if r["config"]["augment"]["name"] == "mixup"} == {
        best["values"]["augment.alpha"]}
    # The selection bias by hand: the search's objective - (the chosen's fresh test accuracy + the baseline's
    # fresh val - test gap), with its SE over the fresh seeds.
    chosen_test = [r["test_acc"] for r in fresh if r["config"]["augment"]["name"] == "mixup"]
    gaps = [r["val_acc"] - r["test_acc"] for r in fresh if r["config"]["augment"]["name"] == "none"]
    bias = best["objective"] - (sum(chosen_test) / len(chosen_test) + sum(gaps) / len(gaps))
    se = (pd.Series(chosen_test).var() / len(chosen_test) + pd.Series(gaps).var() / len(gaps)) ** 0.5
    summary = (sweep / "summary.md").read_text()
    assert f"| in the search | {best['objective']:.2f} % | 2 (0-1) |" in summary
    assert f"| on fresh seeds | {sum(chosen_fresh) / len(chosen_fresh):.2f} % | 4 (from seed 2) |" in summary
    assert f"| selection bias, on test images the search never saw | {bias:+.2f} ± {se:.2f} points | |" in summary
    assert "test set, fresh seeds, against augment=none" in proc.stdout
    assert (sweep / "tune_history.png").stat().st_size and (sweep / "tune_objective.png").stat().st_size
    # The confirmation's directory is a sequential sweep's: its own summary says the same verdict.
    confirmed = pd.read_csv(confirm / "summary.csv")
    assert sorted(confirmed["n"]) == [4, 4]
    # The same command again trains nothing and its dry run says so.
    before = stamps(sweep / "search") | stamps(confirm)
    run_cli([*STUDY, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert stamps(sweep / "search") | stamps(confirm) == before
    assert trial_values(sweep) == [t["values"] for t in trials]
    plan = run_cli([*STUDY, f"hydra.sweep.dir={sweep}"], cwd=tmp_path, module="mixupexp.plan")
    assert "14 jobs, 14 distinct runs: 14 finished; nothing left to train" in plan.stdout
    assert "3 of 3 trials done" in plan.stdout


@pytest.mark.slow
def test_a_study_stopped_midway_resumes_reuses_its_runs_and_asks_for_no_trial_twice(tmp_path):
    whole = tmp_path / "whole"
    run_cli([*STUDY, "hydra.sweeper.confirm.max_seeds=3", f"hydra.sweep.dir={whole}"], cwd=tmp_path)
    sweep = tmp_path / "sweep"
    command = [*STUDY, "hydra.sweeper.confirm.max_seeds=3", f"hydra.sweep.dir={sweep}",
               f"+hydra.callbacks.interrupt._target_={INTERRUPT_JOB_TARGET}"]
    # Ctrl-C at job 3: trial 1's second seed, after its first seed finished.
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # the callback's module
    stopped = run_cli(command, cwd=tmp_path, check=False, env={**env, INTERRUPT_JOB_ENV: "3"})
    assert stopped.returncode == 130
    record = json.loads((sweep / "tune.json").read_text())
    assert [(t["number"], t["state"]) for t in record["trials"]] == [(0, "complete"), (1, "running")]
    finished = stamps(sweep / "search")
    assert len(finished) == 4  # trial 0's two runs, trial 1's first, and the run Ctrl-C stopped at its start
    run_cli(command, cwd=tmp_path, env=env)
    record = json.loads((sweep / "tune.json").read_text())
    assert [t["number"] for t in record["trials"]] == [0, 1, 2]
    assert trial_values(sweep) == trial_values(whole)  # the trials an unbroken study asked for
    first_runs = [sweep / record["trials"][t]["runs"][s]["run_dir"] / "train.log"
                  for t, s in ((0, 0), (0, 1), (1, 0))]
    assert all(stamps(sweep / "search")[p] == finished[p] for p in first_runs)  # found finished, not trained again
    assert [t["objective"] for t in record["trials"]] == [
        t["objective"] for t in json.loads((whole / "tune.json").read_text())["trials"]]


@pytest.mark.slow
def test_a_study_killed_at_any_moment_resumes_with_every_trial_once(tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "mixupexp.train", *STUDY, "hydra.sweeper.confirm.max_seeds=3",
               f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HYDRA_FULL_ERROR": "0"})
    deadline = time.monotonic() + 300
    while len(list((sweep / "search").glob("*/result.json"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    run_cli(command[3:], cwd=tmp_path)
    record = json.loads((sweep / "tune.json").read_text())
    assert [t["number"] for t in record["trials"]] == [0, 1, 2]
    assert {t["state"] for t in record["trials"]} == {"complete"}
    assert all(not math.isnan(t["objective"]) for t in record["trials"])
    assert len({json.dumps(t["values"], sort_keys=True) for t in record["trials"]}) == 3


@pytest.mark.slow
def test_the_grid_sampler_runs_each_point_once_two_trials_a_batch_through_the_parallel_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", "hydra/sweeper=tune", "hydra/launcher=parallel", "augment=mixup",
                    "augment.alpha=choice(0.2,1.0)", "augment.ratio=choice(0.5,1.0)", *QUICK,
                    "hydra.sweeper.sampler=grid", "hydra.sweeper.n_trials=10", "hydra.sweeper.racing=false",
                    "hydra.sweeper.seeds_per_trial=1",
                    "hydra.sweeper.trials_per_batch=2", "hydra.sweeper.confirm.min_seeds=2",
                    "hydra.sweeper.confirm.max_seeds=2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    values = trial_values(sweep)
    assert sorted((v["augment.alpha"], v["augment.ratio"]) for v in values) == [
        ("0.2", "0.5"), ("0.2", "1.0"), ("1.0", "0.5"), ("1.0", "1.0")]  # the grid has 4 points: 4 trials, not 10
    log = proc.stdout + proc.stderr
    # Trials 0 and 1 are asked, then launched together: both start before either is told.
    assert log.index("trial 1 of 4:") < log.index("trial 0: mean validation accuracy")
    assert log.index("trial 3 of 4:") < log.index("trial 2: mean validation accuracy")


@pytest.mark.slow
def test_a_study_stopped_in_its_confirmation_names_the_confirmation_runs_and_resumes_them(tmp_path):
    sweep = tmp_path / "sweep"
    command = [*STUDY, "hydra.sweeper.confirm.max_seeds=3", f"hydra.sweep.dir={sweep}",
               f"+hydra.callbacks.interrupt._target_={INTERRUPT_JOB_TARGET}"]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # Jobs 0-5 are the 3 trials' 2 seeds each; job 6 is the confirmation's first.
    assert run_cli(command, cwd=tmp_path, check=False, env={**env, INTERRUPT_JOB_ENV: "6"}).returncode == 130
    record = json.loads((sweep / "tune.json").read_text())
    planned = sorted((run["role"], run["overrides"][-1]) for run in record["confirm"]["runs"])
    assert planned == [("baseline", f"seed={s}") for s in (2, 3, 4)] + [("chosen", f"seed={s}") for s in (2, 3, 4)]
    plan = run_cli(command, cwd=tmp_path, module="mixupexp.plan", env=env).stdout
    assert "12 jobs, 12 distinct runs: 6 finished, 6 new" in plan
    run_cli(command, cwd=tmp_path, env=env)
    assert len(list(sweep.glob("confirm-trial*/*/result.json"))) == 6


def test_a_study_directory_of_another_space_is_refused_before_anything_runs(tmp_path, capsys):
    from mixupexp.runs.command_plan import check_command_line
    from mixupexp.runs.tune_design import RECORD_FILE, TuneSettings, new_record

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    new_record(TuneSettings(), read_space(["augment=mixup", "augment.alpha=interval(0.05,1.0)"])).write(sweep)
    before = (sweep / RECORD_FILE).read_text()
    with pytest.raises(SystemExit) as info:
        check_command_line(["--multirun", "hydra/sweeper=tune", "augment=mixup", "augment.alpha=interval(0.05,2.0)",
                            *TINY, "data.val_size=64", f"hydra.sweep.dir={sweep}"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is the record of a study of another space" in err[0]
    assert (sweep / RECORD_FILE).read_text() == before


@pytest.mark.parametrize("damage", ["truncated", "garbled header"])
def test_a_damaged_study_db_is_refused_in_one_line_before_anything_runs(tmp_path, capsys, damage):
    from mixupexp.runs.command_plan import check_command_line
    from mixupexp.runs.tune_design import STUDY_FILE, TuneSettings
    from mixupexp.runs.tune_sweep import open_study

    sweep = tmp_path / "sweep"
    sweep.mkdir()
    space = ["augment=mixup", "augment.alpha=interval(0.05,2.0)"]
    study = open_study(sweep, TuneSettings(), read_space(space))
    study.enqueue_trial({"augment.alpha": 0.5})  # a few pages more than an empty study's
    del study
    raw = (sweep / STUDY_FILE).read_bytes()
    damaged = {"truncated": raw[:len(raw) // 2], "garbled header": bytes(b ^ 0xFF for b in raw[:100]) + raw[100:]}[damage]
    (sweep / STUDY_FILE).write_bytes(damaged)
    with pytest.raises(SystemExit) as info:
        check_command_line(["--multirun", "hydra/sweeper=tune", *space, *TINY, "data.val_size=64",
                            f"hydra.sweep.dir={sweep}"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {sweep / STUDY_FILE} cannot be read as the study's storage")
    assert (sweep / STUDY_FILE).read_bytes() == damaged and sorted(p.name for p in sweep.iterdir()) == [STUDY_FILE]


def test_the_same_study_in_another_order_of_overrides_is_the_same_study(tmp_path):
    from mixupexp.runs.tune_design import TuneSettings, new_record

    settings = TuneSettings(racing=False)
    study = ["augment=mixup", "optimizer.lr=0.01", "augment.alpha=interval(0.05,1.0)", "augment.ratio=choice(0.1,0.5)"]
    record = new_record(settings, read_space(study))
    record.check_same_study(settings, read_space(study[::-1]), tmp_path)
    with pytest.raises(ConfigError, match="another space"):
        record.check_same_study(TuneSettings(racing=False, seeds_per_trial=5), read_space(study), tmp_path)
    with pytest.raises(ConfigError, match="another space"):  # raced, or raced otherwise: another study too
        record.check_same_study(TuneSettings(), read_space(study), tmp_path)
    raced = new_record(TuneSettings(), read_space(study))
    with pytest.raises(ConfigError, match="another space"):
        raced.check_same_study(TuneSettings(max_seeds_per_trial=5), read_space(study), tmp_path)


def test_the_selection_bias_on_unseen_images_is_the_true_optimism():
    from mixupexp.analysis.guarantee_simulation import optimism
    from mixupexp.analysis.selection import selection_bias

    bias, se = selection_bias(60.0, [57.0, 59.0], [1.0, 2.0])  # 60 - (58 + 1.5); sqrt(2 / 2 + 0.5 / 2)
    assert (bias, se) == (pytest.approx(0.5), pytest.approx(1.25 ** 0.5))
    r = optimism(0.4, studies=1500)
    assert abs(r["new"] - r["true"]) < 3 * r["new_se"]  # within Monte-Carlo error of the truth
    assert r["old_missed"] > 0.3  # the search - fresh validation difference misses much of it
