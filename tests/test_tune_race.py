"""Racing in hydra/sweeper=tune (runs/tune_race.py): a race worked by hand, the sweep's loop through a launcher
that writes results from a known landscape (what is told to Optuna, resume after a kill mid-race), the launcher
path through the command line, and the refusals (the race's bad settings are among test_tune.py's)."""

import hashlib
import json
import math
import random
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf
from scipy.stats import t as student_t

from mixupexp.runs.tune_race import CAP, INCUMBENT, RaceSettings, drop_bound, replay

from .conftest import TINY, run_cli

# ---- the rule, by hand -------------------------------------------------------------------------------------


def test_a_race_worked_by_hand():
    """Five trials, one a batch, min 1 seed, max 3, tolerance 0.5 points."""
    settings = RaceSettings(min_seeds=1, max_seeds=3, tolerance=0.5)
    values = {
        0: {0: 70.0, 1: 71.0, 2: 70.5},  # leads its batch alone: the first incumbent, on seed 0
        1: {0: 69.0},  # batch 1: on seed 0 against trial 0; no spread known yet: no drop; 69 < 70: tied on 1 seed
        2: {0: 72.0, 1: 72.0},  # batch 2: the incumbent gets seed 1 (trial 1 tied); trial 2 on seed 0 (no spread,
        # 2 < 2 seeds), then seeds 0-1: d = (2, 1), mean +1.5 > 0: it takes the lead
        3: {0: 60.0},  # batch 3: d = 60 - 72 = -12 on seed 0; s from trial 2's comparison: sd(2, 1) = 0.707, 1 df
        4: {0: 71.5, 1: 72.0},  # batch 4: d = -0.5 on seed 0: not below; seeds 0-1: d = (-0.5, 0): tied on 2 seeds
    }
    race = replay([[0], [1], [2], [3], [4]], values, settings=settings)
    stops = {n: e.stop for n, e in race.entries.items()}
    assert stops == {0: "overtaken by trial 2", 1: "tied on 1 seed", 2: INCUMBENT, 3: "dropped in round 1",
                     4: "tied on 2 seeds"}
    assert race.scheduled() == {0: 2, 1: 1, 2: 2, 3: 1, 4: 2}
    assert race.incumbent == 2 and not race.open
    # Trial 3's bound: -12 + t(0.95, 1 df) * 0.707 / sqrt(1)
    assert race.entries[3].upper == pytest.approx(-12 + student_t.ppf(0.95, 1) * math.sqrt(0.5), abs=1e-12)
    # Trial 4, round 2: pooled over trial 2's (2, 1) and trial 4's (-0.5, 0): SS = 0.5 + 0.125, 2 df
    pooled = math.sqrt((0.5 + 0.125) / 2)
    assert race.entries[4].upper == pytest.approx(-0.25 + student_t.ppf(0.95, 2) * pooled / math.sqrt(2))
    # The incumbent over runs spent, batch by batch: (runs so far, incumbent, its mean over its seeds)
    assert race.history == [(1, 0, 70.0), (2, 0, 70.0), (5, 2, 72.0), (6, 2, 72.0), (8, 2, 72.0)]
    # Trial 4 tied: a sixth trial would find the incumbent on 3 seeds (seed 2 is run for it then) ...
    assert replay([[0], [1], [2], [3], [4], [5]], values, settings=settings).entries[2].seeds == 3
    # ... and the race is open until trial 2's seed 2 and trial 5's seed 0 are in.
    assert replay([[0], [1], [2], [3], [4], [5]], values, settings=settings).open


def test_a_race_reaching_the_cap_and_a_batch_of_two():
    settings = RaceSettings(min_seeds=2, max_seeds=2, tolerance=0.0)
    values = {0: {0: 70.0, 1: 70.0}, 1: {0: 71.0, 1: 70.0}, 2: {0: 69.0, 1: 70.5}, 3: {0: 70.5, 1: 70.9},
              4: {0: 72.0, 1: 71.0}}
    # Batch 0 (trials 0, 1): no incumbent; both run seeds 0-1, trial 1 has the best mean and leads; trial 0 is
    # compared with it on the same seeds: d = (-1, 0), not better: at the cap (2 seeds = max_seeds).
    # Batch 1 (trials 2, 3, 4) races trial 1: d2 = (-2, 0.5), d3 = (-0.5, 0.9), d4 = (1, 1); both 3 and 4 are
    # better, 4 the more (mean +1 > +0.2): it leads, 3 and 1 are overtaken by it.
    race = replay([[0, 1], [2, 3, 4]], values, settings=settings)
    assert {n: e.stop for n, e in race.entries.items()} == {
        0: CAP, 1: "overtaken by trial 4", 2: CAP, 3: "overtaken by trial 4", 4: INCUMBENT}
    assert race.entries[2].upper == pytest.approx(drop_bound(-0.75, _pooled(values), 4, 2))
    assert race.entries[2].upper == pytest.approx(-0.75 + student_t.ppf(0.95, 4) * math.sqrt(4.605 / 4) / math.sqrt(2))


def _pooled(values):
    """The pooled sd of batch 1's look: trials 0 (vs 1), 2, 3, 4 (vs 1), each about its own mean."""
    diffs = [[values[n][s] - values[1][s] for s in (0, 1)] for n in (0, 2, 3, 4)]
    squares = sum((d - sum(ds) / 2) ** 2 for ds in diffs for d in ds)
    return math.sqrt(squares / 4)


def test_failed_runs_stop_their_trial_and_a_failed_incumbent_opens_the_next_batch():
    settings = RaceSettings(min_seeds=1, max_seeds=3, tolerance=0.5)
    values = {0: {0: 70.0}, 1: {0: 69.0}, 2: {0: 71.0}, 3: {0: 68.0}}
    race = replay([[0], [1], [2], [3]], values, failed={(0, 0)}, settings=settings)
    # Trial 0 failed: no incumbent after batch 0; trial 1 opens batch 1 and leads; trial 2 beats it on seed 0;
    # trial 3 is 3 points behind on seed 0, but no comparison has two seeds yet, so no spread: tied.
    assert {n: e.stop for n, e in race.entries.items()} == {
        0: "failed", 1: "overtaken by trial 2", 2: INCUMBENT, 3: "tied on 1 seed"}
    # The incumbent's extra seed fails: the trials racing it stop, and the next batch opens without one.
    race = replay([[0], [1], [2], [3], [4], [5]], {**values, 4: {0: 70.0}, 5: {0: 66.0}}, failed={(0, 0), (2, 1)},
                  settings=settings)
    assert race.entries[2].stop == "failed" and race.entries[4].stop == "incumbent trial 2 failed"
    assert race.incumbent == 5 and race.entries[5].stop == INCUMBENT


# ---- the sweep's loop, with a launcher that writes results from a known landscape ------------------------


SPACE = ["augment=mixup", "augment.alpha=interval(0.05,2.0)", "augment.ratio=interval(0.05,1.0)"]


def truth(alpha: float, ratio: float) -> float:
    return 75.0 - 3.0 * math.log(alpha / 0.4) ** 2 - 8.0 * (ratio - 0.3) ** 2


def job_values(job):
    return dict(o.split("=", 1) for o in job if not o.startswith("hydra."))


def fake_name(job) -> str:
    values = job_values(job)
    digest = hashlib.sha1(json.dumps(sorted(values.items())).encode()).hexdigest()[:10]
    return f"mixup_seed{values['seed']}_{digest}"


class LandscapeLauncher:
    """Writes each job's result.json at once: val_acc = truth + a seed effect + run noise (0.3 points)."""

    def __init__(self, search_dir, stop_after=None):
        self.search_dir, self.stop_after, self.launched, self.batches = search_dir, stop_after, [], []

    def launch(self, jobs, initial_job_idx):
        self.batches.append(len(jobs))
        for job in jobs:
            if self.stop_after is not None and len(self.launched) >= self.stop_after:
                raise KeyboardInterrupt
            values = job_values(job)
            seed = int(values["seed"])
            noise = random.Random(fake_name(job)).gauss(0, 0.3)
            accuracy = truth(float(values["augment.alpha"]), float(values["augment.ratio"])) + 0.5 * seed + noise
            run_dir = self.search_dir / fake_name(job)
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "result.json").write_text(json.dumps({"status": "ok", "val_acc": accuracy, "test_acc": 50.0,
                                                             "config": {"seed": seed}}))
            self.launched.append(fake_name(job))
        return [SimpleNamespace(return_value=None) for _ in jobs]


class NameLoader:
    def load_sweep_config(self, config, overrides):
        return list(overrides)


def run_study(sweep, monkeypatch, stop_after=None, **settings):
    import mixupexp.runs.tune_sweep as tune_sweep
    from mixupexp.runs.tune_design import TuneSettings
    from mixupexp.runs.tune_space import read_space

    monkeypatch.setattr(tune_sweep, "run_name", fake_name)
    monkeypatch.setattr(tune_sweep, "confirm", lambda *a, job_index, **k: ([], job_index))
    launcher = LandscapeLauncher(sweep / "search", stop_after)
    settings = TuneSettings(**{"n_trials": 12, "racing": True, "min_seeds_per_trial": 1, "max_seeds_per_trial": 4,
                               "sampler": "random", **settings})
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}})
    try:
        tune_sweep.tune(settings, read_space(SPACE), config=config, config_loader=NameLoader(), launcher=launcher)
    except KeyboardInterrupt:
        pass
    return launcher


def read_record(sweep):
    return json.loads((sweep / "tune.json").read_text())


def test_the_sweep_races_tells_optuna_and_recomputes_from_its_runs(tmp_path, monkeypatch):
    optuna = pytest.importorskip("optuna")
    sweep = tmp_path / "sweep"
    launcher = run_study(sweep, monkeypatch)
    assert len(launcher.launched) == len(set(launcher.launched))  # no run launched twice
    record = read_record(sweep)
    trials = record["trials"]
    assert [t["number"] for t in trials] == list(range(12))
    assert all(t["stop"] for t in trials) and sum(t["stop"] == INCUMBENT for t in trials) == 1
    assert record["incumbent"] == next(t["number"] for t in trials if t["stop"] == INCUMBENT)
    pruned = [t for t in trials if t["state"] == "pruned"]
    assert pruned and all(t["stop"].startswith("dropped in round") for t in pruned)
    assert len(launcher.launched) == sum(len(t["runs"]) for t in trials) < 12 * 3  # fewer than 3 seeds a trial
    # The race recomputed from the result files alone gives every stop the sweep recorded.
    values = {t["number"]: {run["seed"]: json.loads((sweep / run["run_dir"] / "result.json").read_text())["val_acc"]
                            for run in t["runs"]} for t in trials}
    batches = {}
    for t in trials:
        batches.setdefault(t["batch"], []).append(t["number"])
    race = replay([batches[b] for b in sorted(batches)], values, settings=RaceSettings(1, 4, 0.5))
    assert {n: e.stop for n, e in race.entries.items()} == {t["number"]: t["stop"] for t in trials}
    assert {n: e.seeds for n, e in race.entries.items()} == {t["number"]: len(t["runs"]) for t in trials}
    # What Optuna was told: a dropped trial pruned, its partial mean as the intermediate value at step = its
    # seeds (and so its value); every other trial complete with the mean of the seeds it had when it stopped.
    study = optuna.load_study(study_name="mixupexp-tune", storage=f"sqlite:///{sweep / 'study.db'}")
    for frozen, trial in zip(study.get_trials(), trials):
        mean = sum(values[trial["number"]].values()) / len(values[trial["number"]])
        if trial["state"] == "pruned":
            assert frozen.state == optuna.trial.TrialState.PRUNED
            assert frozen.intermediate_values == {len(trial["runs"]): pytest.approx(mean)}
            assert frozen.value == pytest.approx(mean)
        else:
            assert frozen.state == optuna.trial.TrialState.COMPLETE
            if trial["stop"] != INCUMBENT and not trial["stop"].startswith("overtaken"):
                assert frozen.value == pytest.approx(mean)


@pytest.mark.parametrize("stop_after", [1, 4, 9])
def test_a_race_killed_midway_resumes_with_the_same_trials_and_trains_no_run_twice(tmp_path, monkeypatch,
                                                                                    stop_after):
    pytest.importorskip("optuna")
    whole = run_study(tmp_path / "whole", monkeypatch, trials_per_batch=2)
    first = run_study(tmp_path / "sweep", monkeypatch, stop_after=stop_after, trials_per_batch=2)
    assert len(first.launched) == stop_after
    second = run_study(tmp_path / "sweep", monkeypatch, trials_per_batch=2)
    assert not set(first.launched) & set(second.launched)  # nothing the first finished is trained again
    assert sorted(first.launched + second.launched) == sorted(whole.launched)
    broken, unbroken = read_record(tmp_path / "sweep"), read_record(tmp_path / "whole")
    assert [(t["values"], t["stop"], len(t["runs"])) for t in broken["trials"]] == [
        (t["values"], t["stop"], len(t["runs"])) for t in unbroken["trials"]]


def test_trials_of_a_batch_and_the_incumbents_extra_seed_go_in_one_launch(tmp_path, monkeypatch):
    pytest.importorskip("optuna")
    launcher = run_study(tmp_path / "sweep", monkeypatch, trials_per_batch=3)
    # The first launch is the opening batch: 3 trials, 1 seed each.
    assert launcher.batches[0] == 3
    assert sum(launcher.batches) == len(launcher.launched)


# ---- the refusals ------------------------------------------------------------------------------------------


def test_racing_without_a_validation_split_is_one_line_naming_the_key(tmp_path):
    proc = run_cli(["--multirun", "hydra/sweeper=tune", *SPACE, *TINY, "hydra.sweeper.racing=true",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "data.val_size=" in lines[0]
    assert not (tmp_path / "sweep").exists()


# ---- through the command line: real (tiny) runs ------------------------------------------------------------

QUICK = [*TINY, "eval.fgsm_eps=[]", "trainer.threads=1", "trainer.precision=fp32", "data.val_size=64"]
RACE = ["--multirun", "hydra/sweeper=tune", *SPACE, *QUICK, "hydra.sweeper.racing=true", "hydra.sweeper.n_trials=4",
        "hydra.sweeper.max_seeds_per_trial=3", "hydra.sweeper.confirm.min_seeds=2", "hydra.sweeper.confirm.max_seeds=2"]


def recomputed(sweep):
    """The race replayed from the result.json files of the runs tune.json names."""
    from mixupexp.runs.tune_report import race_of
    from mixupexp.runs.tune_design import Record

    return race_of(Record.read(sweep), sweep)


@pytest.mark.slow
def test_a_race_through_the_parallel_launcher_two_trials_a_batch(tmp_path):
    import pandas as pd

    sweep = tmp_path / "sweep"
    proc = run_cli([*RACE, "hydra/launcher=parallel", "hydra.sweeper.trials_per_batch=2", f"hydra.sweep.dir={sweep}"],
                   cwd=tmp_path)
    record = read_record(sweep)
    trials = record["trials"]
    assert [t["batch"] for t in trials] == [0, 0, 1, 1]
    race = recomputed(sweep)
    assert {n: e.stop for n, e in race.entries.items()} == {t["number"]: t["stop"] for t in trials}
    assert record["chosen"] == record["incumbent"] == race.incumbent
    log = proc.stdout + proc.stderr
    # The two trials of a batch are launched together: both start before either is told.
    assert log.index("trial 1 of 4 (round 1)") < min(log.index(f"trial {n}: ") for n in (0, 1))
    table = pd.read_csv(sweep / "trials.csv", dtype={"seeds": str})
    assert list(table["stop"]) == [t["stop"] for t in trials]
    assert list(table["seeds"]) == [" ".join(str(r["seed"]) for r in t["runs"]) for t in trials]
    runs = sum(len(t["runs"]) for t in trials)
    assert f"racing: {runs} runs in the search for 4 trials, against 4 · 3 = 12" in (sweep / "summary.md").read_text()
    # The confirmation's fresh seeds start above every seed a raced trial may run (0-2).
    fresh = {json.loads(p.read_text())["config"]["seed"] for p in sweep.glob("confirm-trial*/*/result.json")}
    assert fresh == {3, 4}


@pytest.mark.slow
def test_a_race_stopped_midway_through_the_command_line_resumes_and_trains_no_run_twice(tmp_path):
    import os

    from .conftest import REPO
    from .sweep_callbacks import INTERRUPT_JOB_ENV, INTERRUPT_JOB_TARGET

    whole = tmp_path / "whole"
    run_cli([*RACE, f"hydra.sweep.dir={whole}"], cwd=tmp_path)
    sweep = tmp_path / "sweep"
    command = [*RACE, f"hydra.sweep.dir={sweep}", f"+hydra.callbacks.interrupt._target_={INTERRUPT_JOB_TARGET}"]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}  # the callback's module
    assert run_cli(command, cwd=tmp_path, check=False, env={**env, INTERRUPT_JOB_ENV: "3"}).returncode == 130
    finished = {p: p.stat().st_mtime_ns for p in (sweep / "search").glob("*/result.json")
                if json.loads(p.read_text())["status"] == "ok"}
    assert len(finished) == 3
    run_cli(command, cwd=tmp_path, env=env)
    assert all(p.stat().st_mtime_ns == stamp for p, stamp in finished.items())  # found finished, not trained again
    broken, unbroken = read_record(sweep), read_record(whole)
    assert [(t["values"], t["stop"], [r["seed"] for r in t["runs"]]) for t in broken["trials"]] == [
        (t["values"], t["stop"], [r["seed"] for r in t["runs"]]) for t in unbroken["trials"]]
    assert broken["chosen"] == unbroken["chosen"]


# ---- the report's plots ------------------------------------------------------------------------------------


def test_tune_plots_tick_whole_trials_and_write_values_short(tmp_path):
    """Fractional trial ticks (2.5) and α at full float precision (0.07022960007711491) once squeezed the axes."""
    import pandas as pd

    from mixupexp.runs.tune_report import tune_figures

    table = pd.DataFrame({"trial": [0, 1, 2], "state": ["complete"] * 3,
                          "augment.alpha": ["0.07022960007711491", "0.5", "1.2345678901"],
                          "model": ["simple_cnn", "simple_cnn", "preact_resnet18"],
                          "objective": [60.0, 61.5, 59.0], "best_so_far": [60.0, 61.5, 61.5]})
    history, objective = tune_figures(table, ["augment.alpha", "model"], math.nan, 1)
    for figure in (history, objective):
        figure.canvas.draw()
    ticks = history.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)
    labels = [t.get_text() for t in objective.axes[0].get_xticklabels()] + [
        t.get_text() for t in objective.axes[1].get_xticklabels()]
    assert all(len(label) <= 16 for label in labels)
    table["augment.alpha"] = [0.07022960007711491, 0.5, 1.2345678901]
    _, objective = tune_figures(table, ["augment.alpha", "model"], math.nan, 1)
    objective.canvas.draw()
    assert all(len(t.get_text()) <= 5 for t in objective.axes[0].get_xticklabels())


def test_the_simulation_runs_both_designs_through_the_real_rule():
    pytest.importorskip("optuna")
    from mixupexp.runs.tune_simulation import DESIGNS, table

    rows = table(studies=2, n_trials=4, seeds_per_trial=3, designs=DESIGNS[:2], sds=(0.8,))
    fixed, raced = rows
    assert (fixed["runs"], fixed["trials"]) == (12, 4)  # 4 trials x 3 seeds
    assert raced["trials"] == 4 and raced["runs"] <= 12  # at most 3 seeds a trial, the same trials
    assert all(row["regret"] >= 0 for row in rows)
