"""`python -m mixupexp.plan` prices a study before it runs: runs and time on a fresh directory (a calibration of
this machine, cached), a fixed sweep's power by the noncentral t against a brute simulation, a sequential
sweep's operating table against decide_sweep sweep by sweep, the paired-difference sd from finished runs, a
planned sweep's schedule kept on resume, and the bad inputs."""

import json
import math

import numpy as np
import pytest
from scipy import stats

from mixupexp.analysis import operating
from mixupexp.analysis import sequential as seq
from mixupexp.analysis.sequential_simulation import Setting, simulate_accuracies
from mixupexp.runs import pricing
from mixupexp.runs.command_plan import check_command_line, plan_command
from mixupexp.runs.dry_run import describe

from .conftest import TINY, run_cli

SEQUENTIAL = ["--multirun", "hydra/sweeper=sequential", "augment=none,mixup", *TINY]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The calibration's cache (~/.cache/mixupexp) in tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def plan(args) -> str:
    """What `python -m mixupexp.plan ARGS` prints."""
    return "\n".join(describe(check_command_line(args)))


def test_plan_prices_a_fixed_sweep_on_a_fresh_directory(tmp_path, home):
    args = ["--multirun", "augment=none,mixup", "seed=0,1,2", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    out = plan(args)
    assert "6 distinct runs: 6 new; about " in out and "calibrated on this machine (measured now)" in out
    assert "price: 6 runs, about " in out
    power = operating.fixed_power(3, 1, pricing.DEFAULT_SD)
    assert f"with 3 seeds per configuration: {100 * power:.1f} % (paired t-test at 5 %/1" in out
    assert power < 0.2  # 3 seeds cannot find 1 point at an sd of 1.41
    assert not (tmp_path / "sweep").exists()  # nothing but the cache is written
    assert [p.name for p in (home / ".cache" / "mixupexp").iterdir()] == ["calibration.json"]
    again = plan(args)
    assert "calibrated on this machine (cached, measured " in again


def test_plan_prints_the_operating_table_of_a_sequential_sweep(tmp_path, home):
    args = [*SEQUENTIAL, "hydra.sweeper.design=planned", "hydra.sweeper.assumed_sd=0.5",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    out = plan(args)
    assert "price: at most 40 runs, about " in out
    assert "through the planned design's rule" in out and "sd 0.50 points, hydra.sweeper.assumed_sd" in out
    rows = [line for line in out.splitlines() if line.startswith("| ") and " δ (" in line]
    assert [row.split(" δ")[0] for row in rows] == ["| 0", "| 0.5", "| 1", "| 2"]
    shares = [[float(cell.rstrip(" %")) for cell in row.strip("| ").split(" | ")[-4:]] for row in rows]
    assert all(sum(row) == pytest.approx(100, abs=0.3) for row in shares)
    assert shares[-1][0] > 99  # 2 points at an sd of 0.5: better, nearly always
    assert not (tmp_path / "sweep").exists()


@pytest.mark.slow
def test_the_plan_command_prices_a_sequential_sweep_as_a_user_runs_it(tmp_path):
    proc = run_cli([*SEQUENTIAL, f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path, module="mixupexp.plan",
                   env={"HOME": str(tmp_path / "home")})
    assert "calibrated on this machine (measured now)" in proc.stdout and "| 2 δ (2 points) |" in proc.stdout


def test_the_operating_table_is_the_decisions_of_decide_sweep_sweep_by_sweep():
    setting = operating.with_difference_sd(Setting(k=2, test_size=None, design=seq.PLANNED), 0.8)
    row = operating.operating_row(setting, 1.0, 60, rng_seed=3)
    base, configs = simulate_accuracies(setting, 60, np.full(2, 1.0), 3)
    runs, verdicts = [], []
    for i in range(60):
        results = {"none": dict(enumerate(base[i])), **{f"c{j}": dict(enumerate(configs[i, j])) for j in range(2)}}
        decisions = seq.decide_sweep(results, "none", design=seq.PLANNED)
        seeds = [decisions[f"c{j}"].n for j in range(2)]
        runs.append(sum(seeds) + max(seeds))
        verdicts += [decisions[f"c{j}"].verdict for j in range(2)]
    assert list(row["runs"]) == runs
    assert row["shares"] == {v: verdicts.count(v) / len(verdicts) for v in operating.VERDICTS}


def test_a_fixed_sweeps_power_is_the_brute_simulations():
    n, k, sd = 6, 2, 0.9
    rng = np.random.default_rng(0)
    d = rng.normal(seq.SMALLEST_EFFECT, sd, size=(40_000, n))
    brute = float((stats.ttest_1samp(d, 0.0, axis=1).pvalue < 0.05 / k).mean())
    assert operating.fixed_power(n, k, sd) == pytest.approx(brute, abs=3 * math.sqrt(0.25 / 40_000))
    # The fixed design powered at delta: the first n whose power reaches 80 %.
    needed = operating.fixed_n(k, sd)
    assert operating.fixed_power(needed, k, sd) >= 0.8 > operating.fixed_power(needed - 1, k, sd)


def test_the_assumed_sd_comes_from_the_finished_runs(tmp_path):
    sweep = plan_command([*SEQUENTIAL, f"hydra.sweep.dir={tmp_path}"]).sweep.design
    baseline, member = sweep.families[0].baseline, sweep.families[0].members[0]
    differences = [0.5, -1.0, 2.0, 0.0]
    for seed, d in enumerate(differences):
        for arm, acc in ((baseline, 70.0 + seed), (member, 70.0 + seed + d)):
            (sweep.run_dir(arm, seed)).mkdir(parents=True)
            (sweep.run_dir(arm, seed) / "result.json").write_text(json.dumps({"status": "ok", "test_acc": acc}))
    sd = pricing.assumed_sd(sweep)
    assert sd.value == pytest.approx(np.std(differences, ddof=1))
    assert sd.source == "pooled from the 4 paired runs finished in the directory"
    assert pricing.assumed_sd(sweep, 0.7).source == "hydra.sweeper.assumed_sd"


def record_planned_sweep(sweep_dir, **settings):
    """sequential.json of a planned sweep that has run a round with these settings (the defaults otherwise)."""
    sweep_dir.mkdir(parents=True)
    schedule = {"alpha": 0.05, "smallest_effect": 1.0, "min_seeds": 3, "seeds_per_round": 2, "max_seeds": 20,
                "design": seq.PLANNED, **settings}
    (sweep_dir / "sequential.json").write_text(json.dumps({"settings": schedule, "k": 1, "runs": 6}))


@pytest.mark.parametrize("change, message", [
    (["hydra.sweeper.max_seeds=9"], "error: hydra.sweeper.max_seeds=9: this sweep's planned boundaries are for "
                                    "max_seeds=20 (sequential.json); keep its schedule, or add "
                                    "hydra.sweeper.design=anytime, which holds under any change of plan"),
    (["hydra.sweeper.seeds_per_round=1"], "error: hydra.sweeper.seeds_per_round=1: this sweep's planned"),
    (["augment=none,mixup,cutmix"], "error: this sweep compares 2 configurations with a baseline and its planned "
                                    "boundaries are for the 1 it started with"),
])
def test_a_planned_sweep_started_again_with_another_schedule_is_refused(tmp_path, home, capsys, change, message):
    sweep = tmp_path / "sweep"
    record_planned_sweep(sweep)
    args = [*SEQUENTIAL, "hydra.sweeper.design=planned", f"hydra.sweep.dir={sweep}", *change]
    assert_refused(args, message, capsys)
    assert sorted(p.name for p in sweep.iterdir()) == ["sequential.json"]
    # The anytime design holds under any change of plan: the same command with it is planned.
    anytime = [a for a in args if not a.startswith("hydra.sweeper.design")] + ["hydra.sweeper.design=anytime"]
    assert plan_command(anytime).sweep.design.settings.design == seq.ANYTIME


def assert_refused(args, message, capsys):
    """What `python -m mixupexp.train ARGS` and `python -m mixupexp.plan ARGS` check first: one line, exit 2."""
    with pytest.raises(SystemExit) as exit:
        check_command_line(args)
    err = capsys.readouterr().err
    assert exit.value.code == 2 and err.startswith(message) and err.count("\n") == 1


@pytest.mark.slow
def test_the_train_command_refuses_a_changed_planned_schedule_before_anything_runs(tmp_path):
    sweep = tmp_path / "sweep"
    record_planned_sweep(sweep)
    proc = run_cli([*SEQUENTIAL, "hydra.sweeper.design=planned", f"hydra.sweep.dir={sweep}",
                    "hydra.sweeper.max_seeds=9"], tmp_path, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: hydra.sweeper.max_seeds=9: this sweep's planned")
    assert sorted(p.name for p in sweep.iterdir()) == ["sequential.json"]


@pytest.mark.parametrize("bad, message", [
    ("hydra.sweeper.assumed_sd=0", "error: hydra.sweeper.assumed_sd=0 must be a number > 0"),
    ("hydra.sweeper.assumed_sd=-1.5", "error: hydra.sweeper.assumed_sd=-1.5 must be a number > 0"),
    ("hydra.sweeper.assumed_sd=abc", "error: hydra.sweeper.assumed_sd=abc must be a number > 0"),
    ("hydra.sweeper.assumed_sd=nan", "error: hydra.sweeper.assumed_sd=nan must be a number > 0"),
    ("hydra.sweeper.design=fixed", "error: hydra.sweeper.design=fixed must be anytime or planned"),
])
def test_bad_input_gets_one_line_exit_2_and_nothing_written(tmp_path, home, capsys, bad, message):
    assert_refused([*SEQUENTIAL, bad, f"hydra.sweep.dir={tmp_path / 'sweep'}"], message, capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("module", ["mixupexp.plan", "mixupexp.train"])
def test_the_commands_refuse_a_bad_assumed_sd_before_anything_is_written(tmp_path, module):
    proc = run_cli([*SEQUENTIAL, "hydra.sweeper.assumed_sd=abc", f"hydra.sweep.dir={tmp_path / 'sweep'}"], tmp_path,
                   module=module, check=False, env={"HOME": str(tmp_path / "home")})
    assert proc.returncode == 2 and proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: hydra.sweeper.assumed_sd=abc must be a number > 0")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
