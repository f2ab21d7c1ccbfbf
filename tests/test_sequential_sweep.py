"""hydra/sweeper=sequential as a user runs it: the plugin found by Hydra, rounds of seeds through the real command
line (checked against the decision core), resume after Ctrl-C between rounds, the parallel launcher, bad input,
the dry run, and the summary of a sequential sweep beside the unchanged summary of a fixed one."""

import json
import math
import os

import pandas as pd
import pytest

from mixupexp.analysis import sequential as seq
from mixupexp.runs.sequential_design import DECISIONS_FILE, SWEEPER_TARGET

from .conftest import REPO, TINY, run_cli
from .sweep_callbacks import (
    FAIL_ENV,
    FAIL_RATIO_ENV,
    FAIL_TARGET,
    FAILURE,
    INTERRUPT_ENV,
    INTERRUPT_TARGET,
)

# One thread and fp32: runs are then the same on every machine (bf16 autocast depends on the CPU).
QUICK = [*TINY, "eval.fgsm_eps=[]", "trainer.threads=1", "trainer.precision=fp32"]
SEQUENTIAL = ["--multirun", "hydra/sweeper=sequential"]
# Two configurations against the baseline, rounds at 3, 5, 7 seeds. Mixup at ratio 0 mixes nothing and trains
# exactly like the baseline: the same accuracy at every seed, identical runs, within at the first look. At ratio 1 it trains differently (these settings learn a little in 2 epochs); alpha 0.2 lets 5 pairs
# settle a comparison, and a smallest effect of 50 points makes "within" the verdict its spread allows.
# The rounds below are worked out for the anytime design (test_a_planned_sweep_... runs the planned one).
DESIGN = ["augment=none,mixup", "augment.ratio=0.0,1.0", "augment.alpha=1.0", "data.num_test=500", "data.signal=20",
          "optimizer.lr=0.01", "trainer.epochs=2", "hydra.sweeper.max_seeds=7", "hydra.sweeper.smallest_effect=50",
          "hydra.sweeper.alpha=0.2", "hydra.sweeper.design=anytime"]
SETTINGS = {"alpha": 0.2, "smallest_effect": 50.0, "min_seeds": 3, "seeds_per_round": 2, "max_seeds": 7}
RESOLUTION = 100 / 500  # accuracies on 500 test images


def arms(sweep):
    """{arm: {seed: accuracy}} of a sweep directory: `none`, or the method and its ratio (`mixup_1.0`)."""
    found = {}
    for path in sweep.glob("*/result.json"):
        result = json.loads(path.read_text())
        augment = result["config"]["augment"]
        arm = "none" if augment["name"] == "none" else f"{augment['name']}_{float(augment['ratio'])}"
        found.setdefault(arm, {})[result["config"]["seed"]] = (
            result["test_acc"] if result["status"] == "ok" else math.nan)
    return found


def replayed_rounds(results, settings=SETTINGS, resolution=RESOLUTION):
    """The seeds the rounds run for each arm, by the decision core alone: round after round, next_seeds given
    the runs of the rounds before it and decide_sweep on them."""
    configs = [name for name in results if name != "none"]
    ran: dict[str, set[int]] = {}
    schedule = {k: settings[k] for k in ("min_seeds", "seeds_per_round", "max_seeds")}
    while True:
        seen = {name: {s: results[name][s] for s in ran.get(name, ())} for name in results}
        decisions = seq.decide_sweep(seen, "none", **settings, resolution=resolution)
        planned = seq.next_seeds(configs, "none", decisions, ran, **schedule)
        if not planned:
            return {name: sorted(seeds) for name, seeds in ran.items()}, decisions
        for name, seeds in planned.items():
            ran.setdefault(name, set()).update(seeds)


def printed(stdout):
    """The lines a command printed, without Hydra's log lines."""
    return [line for line in stdout.strip().splitlines() if not line.startswith("[")]


def stamps(sweep):
    """mtimes of the finished runs' result.json and train.log: a run launched again would log to its train.log."""
    finished = [p.parent for p in sweep.glob("*/result.json") if json.loads(p.read_text())["status"] == "ok"]
    return {path: path.stat().st_mtime_ns for run in finished for path in (run / "result.json", run / "train.log")}


# ---- the plugin --------------------------------------------------------------------------------------------


def test_hydra_finds_the_sequential_sweeper_and_composes_it():
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    from mixupexp.config.compose import compose_config as compose_with_hydra

    cfg = compose_with_hydra(["hydra/sweeper=sequential", "hydra.sweeper.max_seeds=9"], return_hydra_config=True)
    assert cfg.hydra.sweeper._target_ == SWEEPER_TARGET
    assert (cfg.hydra.sweeper.min_seeds, cfg.hydra.sweeper.max_seeds, cfg.hydra.sweeper.seeds_per_round) == (3, 9, 2)
    assert (cfg.hydra.sweeper.smallest_effect, cfg.hydra.sweeper.alpha) == (seq.SMALLEST_EFFECT, seq.ALPHA)
    assert SWEEPER_TARGET in {f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Sweeper)}
    preset = compose_with_hydra(["experiment=seed_study_sequential"], return_hydra_config=True)
    assert preset.hydra.sweeper._target_ == SWEEPER_TARGET and dict(preset.hydra.sweeper.params) == {
        "augment": "none,mixup"}


# ---- rounds through the real command line ------------------------------------------------------------------


@pytest.mark.slow
def test_rounds_add_seeds_only_where_the_comparison_is_open(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*SEQUENTIAL, *QUICK, *DESIGN, f"hydra.sweep.dir={sweep}"]
    plan = run_cli(args, cwd=tmp_path, module="mixupexp.plan").stdout
    assert "next: round 0, 9 runs (augment=none: seeds 0-2; augment=mixup augment.ratio=0.0: seeds 0-2; " \
           "augment=mixup augment.ratio=1.0: seeds 0-2)" in plan
    assert "at most (K + 1) · max_seeds = (2 + 1) · 7 = 21 runs in all; 0 runs so far" in plan
    assert not sweep.exists()

    proc = run_cli(args, cwd=tmp_path)
    assert "13 jobs, 13 distinct runs, every run finished" in proc.stdout  # the account covers every round
    results = arms(sweep)
    assert len(results) == 3  # none (its ratio ignored: one arm), mixup at ratio 0 and 1
    expected, decisions = replayed_rounds(results)
    assert {name: sorted(runs) for name, runs in results.items()} == expected
    # Round by round, as the log says: 3 seeds each, then 2 more while open, the baseline as long as any.
    bounds = seq.round_bounds(3, 2, 7)
    for name, decision in decisions.items():
        assert decision.settled and len(results[name]) == bounds[decision.settled_round]
    assert len(results["none"]) == max(len(results[name]) for name in decisions)
    # Ratio 1 settles within ±50 after 5 seeds; ratio 0, identical, after 3: 13 runs, not 21.
    assert decisions["mixup_0.0"].verdict == seq.WITHIN and not decisions["mixup_0.0"].testable
    assert decisions["mixup_0.0"].n == 3
    assert decisions["mixup_1.0"].verdict == seq.WITHIN and decisions["mixup_1.0"].n == 5
    assert sum(map(len, results.values())) == 13

    # sequential.json: the decisions of the core, for each configuration.
    record = json.loads((sweep / DECISIONS_FILE).read_text())
    assert record["settings"]["max_seeds"] == 7 and record["runs"] == 13 and record["fixed_design_runs"] == 21
    (family,) = record["families"]
    assert family["baseline"] == "augment=none" and family["baseline_seeds"] == 5 and family["compared"] == 2
    assert record["k"] == 2 and record["level"] == pytest.approx(0.1)
    by_key = {f"mixup_{c['configuration'].split('augment.ratio=')[1]}": c for c in family["configurations"]}
    for name, decision in decisions.items():
        assert (by_key[name]["verdict"], by_key[name]["n"], by_key[name]["settled_round"]) == (
            decision.verdict, decision.n, decision.settled_round)
    assert "round 1: 4 runs (augment=none seeds 3, 4; augment=mixup augment.ratio=1.0 seeds 3, 4)" in proc.stdout

    # The summary says what was done, and summarize recomputes the same from the runs.
    summary = pd.read_csv(sweep / "summary.csv")
    for column in ("seeds", "verdict", "stopped", "delta_acc_av_low", "delta_acc_av_high", "runs_saved"):
        assert column in summary
    for column in ("delta_acc_p_value", "delta_acc_p_holm", "delta_acc_ci95_low", "seeds_needed"):
        assert column not in summary
    rows = summary.set_index("augment.ratio", drop=False)
    assert rows.loc[1.0, "stopped"] == "within ±50 points after 5 seeds" and rows.loc[1.0, "runs_saved"] == 2
    assert rows.loc[0.0, "stopped"] == ("within ±50 points after 3 seeds (identical to the baseline at every "
                                        "seed)") and rows.loc[0.0, "runs_saved"] == 4
    lines = printed(proc.stdout)
    totals = ("sequential sweep: 13 runs against the fixed design's 21 (all 3 configurations, baseline included, at "
              "max_seeds = 7 seeds): 8 saved (38 %)")
    (line,) = [line for line in lines if line.startswith(totals)]
    assert "; against the same-power fixed design's " in line and "seeds each, the fixed paired t-test with this " \
        "design's power at 1 sd of a paired difference" in line
    assert any(line.startswith("augment=mixup augment.alpha=1.0 augment.ratio=1.0: within ±50 points after 5 seeds "
                               "(Δ = ") and "anytime-valid interval [" in line for line in lines)
    markdown = (sweep / "summary.md").read_text()
    assert "anytime-valid interval of Δ" in markdown and "not valid after sequential stopping" in markdown
    assert "p (Holm)" not in markdown
    written = (sweep / "summary.csv").read_text()
    (sweep / "summary.csv").unlink()
    again = run_cli([str(sweep), "--no-plots"], cwd=tmp_path, module="mixupexp.summarize")
    assert (sweep / "summary.csv").read_text() == written
    assert line in printed(again.stdout)

    # The dry run of the finished sweep: nothing left, every run accounted for.
    plan = run_cli(args, cwd=tmp_path, module="mixupexp.plan").stdout
    assert "13 jobs, 13 distinct runs: 13 finished; nothing left to train" in plan
    assert "every comparison is settled: no round left to run" in plan


@pytest.mark.slow
def test_a_planned_sweep_takes_the_planned_decisions_and_keeps_its_schedule(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*SEQUENTIAL, *QUICK, *DESIGN[:-1], "hydra.sweeper.design=planned", f"hydra.sweep.dir={sweep}"]
    proc = run_cli(args, cwd=tmp_path)
    results = arms(sweep)
    expected, decisions = replayed_rounds(results, {**SETTINGS, "design": seq.PLANNED})
    assert {name: sorted(runs) for name, runs in results.items()} == expected
    record = json.loads((sweep / DECISIONS_FILE).read_text())
    assert record["settings"]["design"] == seq.PLANNED
    assert "repeated confidence intervals" in record["settings"]["e_value"]
    assert any("planned interval [" in line for line in printed(proc.stdout))
    assert "planned interval of Δ" in (sweep / "summary.md").read_text()
    # Started again with another budget: refused in one line before anything runs; the anytime design goes on.
    refused = run_cli([*args, "hydra.sweeper.max_seeds=9"], cwd=tmp_path, check=False)
    assert refused.returncode == 2 and refused.stderr.startswith(
        "error: hydra.sweeper.max_seeds=9: this sweep's planned boundaries are for max_seeds=7")
    assert arms(sweep) == results
    anytime = [a for a in args if a != "hydra.sweeper.design=planned"] + ["hydra.sweeper.design=anytime"]
    assert "price: at most" in run_cli([*anytime, "hydra.sweeper.max_seeds=9"], cwd=tmp_path,
                                       module="mixupexp.plan").stdout


@pytest.mark.slow
def test_a_sweep_stopped_between_rounds_resumes_with_the_same_decisions(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*SEQUENTIAL, *QUICK, *DESIGN, f"hydra.sweep.dir={sweep}",
            f"+hydra.callbacks.interrupt._target_={INTERRUPT_TARGET}"]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # Ctrl-C at the first job of round 1 (seed 3): round 0 has finished, its decisions written.
    stopped = run_cli(args, cwd=tmp_path, check=False, env={**env, INTERRUPT_ENV: "3"})
    assert stopped.returncode == 130 and "interrupted; resume with: python -m mixupexp.train" in stopped.stderr
    first = arms(sweep)
    assert {name: sorted(runs) for name, runs in first.items()} == {name: [0, 1, 2] for name in first}
    record = json.loads((sweep / DECISIONS_FILE).read_text())
    assert record["next_round"] == 1 and record["runs"] == 9
    assert "next: round 1, 4 runs" in run_cli(args, cwd=tmp_path, module="mixupexp.plan", env=env).stdout
    before = stamps(sweep)
    assert len(before) == 2 * 9

    run_cli(args, cwd=tmp_path, env=env)  # the same command
    after = stamps(sweep)
    assert all(after[path] == stamp for path, stamp in before.items())  # no finished run launched again
    results = arms(sweep)
    expected, decisions = replayed_rounds(results)
    assert {name: sorted(runs) for name, runs in results.items()} == expected
    assert sum(map(len, results.values())) == 13
    record = json.loads((sweep / DECISIONS_FILE).read_text())
    assert record["next_round"] is None and record["runs"] == 13


@pytest.mark.slow
def test_a_failed_run_drops_out_of_its_pairs_is_reported_and_is_tried_again(tmp_path):
    sweep = tmp_path / "sweep"
    args = [*SEQUENTIAL, *QUICK, *DESIGN, f"hydra.sweep.dir={sweep}", f"+hydra.callbacks.fail._target_={FAIL_TARGET}"]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    first = run_cli(args, cwd=tmp_path, check=False, env={**env, FAIL_ENV: "1", FAIL_RATIO_ENV: "1.0"})
    assert first.returncode == 1
    last = first.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 1 of ") and f"failed: RuntimeError: {FAILURE} (mixup_seed1_" in last
    assert "; resume with: python -m mixupexp.train" in last
    results = arms(sweep)
    assert math.isnan(results["mixup_1.0"][1])  # ran and failed: counted as run, its pair left out
    expected, decisions = replayed_rounds(results)
    assert {name: sorted(runs) for name, runs in results.items()} == expected
    assert decisions["mixup_1.0"].n == len(results["mixup_1.0"]) - 1
    summary = pd.read_csv(sweep / "summary.csv").set_index("augment.ratio")
    assert summary.loc[1.0, "n_failed"] == 1 and summary.loc[1.0, "seeds"] == len(results["mixup_1.0"])

    before = stamps(sweep)
    run_cli(args, cwd=tmp_path, env=env)  # the same command, nothing failing: the failed run is tried again
    assert all(stamp == stamps(sweep)[path] for path, stamp in before.items())  # only it trained
    retried = arms(sweep)
    assert not math.isnan(retried["mixup_1.0"][1])
    assert {name: sorted(runs) for name, runs in retried.items()} == {name: sorted(runs) for name, runs in
                                                                      results.items()}
    # The decisions replay from the runs as they are now; a run made after its comparison settled is ignored.
    expected, decisions = replayed_rounds(retried)
    assert all(set(seeds) <= set(retried[name]) for name, seeds in expected.items())
    record = json.loads((sweep / DECISIONS_FILE).read_text())["families"][0]["configurations"]
    by_ratio = {c["configuration"].split("augment.ratio=")[1]: c for c in record}
    assert by_ratio["1.0"]["verdict"] == decisions["mixup_1.0"].verdict
    assert by_ratio["1.0"]["n"] == decisions["mixup_1.0"].n


@pytest.mark.slow
def test_a_round_whose_runs_all_fail_starts_no_other(tmp_path):
    sweep = tmp_path / "sweep"
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), FAIL_ENV: "all"}
    proc = run_cli([*SEQUENTIAL, *QUICK, *DESIGN, f"hydra.sweep.dir={sweep}",
                    f"+hydra.callbacks.fail._target_={FAIL_TARGET}"], cwd=tmp_path, check=False, env=env)
    assert proc.returncode == 1
    assert "every run of the last round failed (9); no further round is started" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("error: 9 of 9 distinct runs (9 jobs)")
    assert {name: sorted(runs) for name, runs in arms(sweep).items()} == {
        name: [0, 1, 2] for name in ("none", "mixup_0.0", "mixup_1.0")}


@pytest.mark.slow
def test_rounds_go_through_the_parallel_launcher(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli([*SEQUENTIAL, "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *QUICK, "augment=none,mixup",
                    "hydra.sweeper.max_seeds=5", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert "Joblib.Parallel" in proc.stdout
    results = arms(sweep)
    settings = {**SETTINGS, "alpha": seq.ALPHA, "smallest_effect": seq.SMALLEST_EFFECT, "max_seeds": 5}
    expected, _ = replayed_rounds(results, settings, resolution=100 / 128)
    assert {name: sorted(runs) for name, runs in results.items()} == expected
    assert f"{sum(map(len, results.values()))} jobs" in proc.stdout and "every run finished" in proc.stdout


# ---- bad input ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, message", [
    (["augment=none,mixup", "hydra.sweeper.min_seeds=1"], "error: hydra.sweeper.min_seeds=1 must be >= 2"),
    (["augment=none,mixup", "hydra.sweeper.min_seeds=5", "hydra.sweeper.max_seeds=4"],
     "error: hydra.sweeper.max_seeds=4 must be >= hydra.sweeper.min_seeds=5"),
    (["augment=none,mixup", "hydra.sweeper.smallest_effect=0"], "error: hydra.sweeper.smallest_effect=0.0 must be > 0"),
    (["augment=mixup", "augment.alpha=0.1,0.4"],
     "error: hydra/sweeper=sequential compares every configuration with its baseline, augment=none, and this sweep "
     "has none; add it to the sweep, e.g. augment=none,mixup"),
    (["augment=none,mixup", "seed=0,1"], "error: seed=0,1 cannot be given with hydra/sweeper=sequential: the sweeper "
                                         "chooses the seeds itself"),
    (["experiment=seed_study"], "error: seed=0,1,2 (from the preset's sweep) cannot be given with "
                                "hydra/sweeper=sequential"),
    (["augment=none,mixup", "hydra.sweeper.first_seed=4294967295"],
     "error: hydra.sweeper.first_seed=4294967295 with hydra.sweeper.max_seeds=20 would run seeds up to 4294967314"),
])
def test_bad_input_gets_one_line_and_nothing_starts(tmp_path, extra, message):
    sweep = tmp_path / "sweep"
    proc = run_cli([*SEQUENTIAL, *QUICK, *extra, f"hydra.sweep.dir={sweep}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
    assert not sweep.exists() and not (tmp_path / "outputs").exists()


# ---- the fixed sweep's summary stays as it was -------------------------------------------------------------


@pytest.mark.slow
def test_a_fixed_sweep_keeps_its_summary(tmp_path):
    from mixupexp.analysis.collect import load_runs
    from mixupexp.runs.sequential_summary import SEQUENTIAL_COLUMNS
    from mixupexp.analysis.table import summarize_runs, sweep_value_order

    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", *QUICK, "augment=none,mixup", "augment.ratio=1.0", "seed=0,1,2",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    written = pd.read_csv(sweep / "summary.csv")
    _, plain = summarize_runs(load_runs([sweep]), sweep_value_order([sweep]))
    assert list(written.columns) == list(plain.columns)  # the plain summary's columns, every one of them
    assert "delta_acc_p_holm" in written and not set(SEQUENTIAL_COLUMNS) - {"verdict"} & set(written)
    markdown = (sweep / "summary.md").read_text()
    assert "| p | p (Holm) | test | P(better) |" in markdown and "## Seeds needed" in markdown
    assert "anytime-valid" not in markdown and "sequential sweep" not in proc.stdout
    assert not (sweep / DECISIONS_FILE).exists()
    assert "sequential" not in json.loads((sweep / "summary_settings.json").read_text())
