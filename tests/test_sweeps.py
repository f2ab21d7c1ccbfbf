"""Sweeps as a user runs them: one run per (identity, seed), extendable sweeps, the plan, exit statuses, Ctrl-C."""

import glob
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from mixupexp.analysis.stats import CONSTANT_DIFFERENCE, PAIRED
from mixupexp.records.lock import LOCK

from .conftest import TINY, run_cli

QUICK = [*TINY, "eval.fgsm_eps=[]"]
# Runs compared by seed: a paired t-test, or, where one tiny epoch left both arms predicting alike, the same
# difference at every seed (nothing to test, but paired all the same).
PAIRED_BY_SEED = (PAIRED, CONSTANT_DIFFERENCE)


def default_sigint():
    """A command started in the background of a non-interactive shell (as CI may be) ignores SIGINT, and so would
    its children: give the child Ctrl-C's default behaviour, as on a terminal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def trained_times(run_dir: Path) -> int:
    """How many times a run was trained into run_dir (each training start logs one such line)."""
    return (run_dir / "train.log").read_text().count("] - training ")


def run_dirs(sweep: Path) -> dict[str, Path]:
    return {p.parent.name: p.parent for p in sweep.glob("*/result.json")}


@pytest.mark.slow
def test_jobs_that_repeat_a_run_train_it_once_and_the_baseline_keeps_its_pairs(tmp_path):
    """`augment=none,mixup augment.alpha=0.1,0.4`: none ignores alpha, so its 2 jobs per seed are one run."""
    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", *QUICK, "augment=none,mixup", "augment.alpha=0.1,0.4", "seed=0,1",
                    f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert "8 jobs, 6 distinct runs" in proc.stderr
    dirs = run_dirs(sweep)
    assert len(dirs) == 6 and all(trained_times(d) == 1 for d in dirs.values())
    summary = pd.read_csv(sweep / "summary.csv")
    baseline = summary[summary["augment"] == "none"]
    assert baseline["n"].tolist() == [2]
    assert summary.loc[summary["augment"] == "mixup", "delta_acc_test"].isin(PAIRED_BY_SEED).sum() == 2


@pytest.mark.slow
def test_sweep_extended_by_a_seed_trains_only_the_new_runs(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *QUICK, "augment=none,mixup", f"hydra.sweep.dir={sweep}"]
    run_cli([*args, "seed=0,1"], cwd=tmp_path)
    before = {name: (d / "result.json").read_text() for name, d in run_dirs(sweep).items()}
    stamps = {name: (d / "result.json").stat().st_mtime_ns for name, d in run_dirs(sweep).items()}
    proc = run_cli([*args, "seed=0,1,2"], cwd=tmp_path)
    after = run_dirs(sweep)
    assert len(after) == 6 and set(before) < set(after)
    for name, text in before.items():  # the finished runs are untouched, never renumbered or refused
        assert (after[name] / "result.json").read_text() == text
        assert (after[name] / "result.json").stat().st_mtime_ns == stamps[name]
        assert trained_times(after[name]) == 1
    assert "did not finish" not in proc.stderr and "refused" not in proc.stderr
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["n"].tolist() == [3, 3] and summary["delta_acc_test"].iloc[1] in PAIRED_BY_SEED


@pytest.mark.slow
def test_plan_lists_every_job_without_training(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *QUICK, "augment=none,mixup", "augment.alpha=0.1,0.4", f"hydra.sweep.dir={sweep}"]
    run_cli([*args, "seed=0"], cwd=tmp_path)
    names = sorted(run_dirs(sweep))
    entries = sorted(sweep.iterdir())
    proc = run_cli([*args, "seed=0,1"], cwd=tmp_path, module="mixupexp.plan")
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].startswith("8 jobs, 6 distinct runs: 3 finished, 3 new, 2 duplicates; about ")
    assert "s per epoch, measured on 3 finished runs" in lines[-1]
    assert sum("duplicate of job" in line for line in lines) == 2
    assert sorted(run_dirs(sweep)) == names  # nothing trained, nothing written
    assert not (sweep / "sweep.json").exists() and sorted(sweep.iterdir()) == entries


def test_plan_of_an_unfinished_run_says_it_resumes(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "checkpoint.pt").write_bytes(b"")
    pd.DataFrame({"epoch": [1]}).to_csv(run_dir / "metrics.csv", index=False)
    from omegaconf import OmegaConf

    from .conftest import compose_config

    config = OmegaConf.to_container(compose_config([*QUICK, "trainer.epochs=3"]), resolve=True)
    (run_dir / "result.json").write_text(json.dumps({"status": "interrupted", "config": config}))
    proc = run_cli([*QUICK, "trainer.epochs=3", f"hydra.run.dir={run_dir}"], cwd=tmp_path, module="mixupexp.plan")
    assert f"{run_dir}: resumable (epoch 1 of 3 done)" in proc.stdout
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("1 job, 1 distinct run: 1 resumable; about ") and " left (2 epochs at " in last


@pytest.mark.slow
def test_a_run_held_by_another_process_makes_the_sweep_exit_nonzero_naming_it(tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *QUICK, "augment=none,mixup", f"hydra.sweep.dir={sweep}"]
    plan = run_cli(args, cwd=tmp_path, module="mixupexp.plan").stdout
    held = Path(plan.splitlines()[1].split(": ")[0].strip())  # job 0's run directory
    held.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        (held / LOCK).write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename,
                                             "invocation": "another command", "since": "a minute ago"}))
        proc = run_cli(args, cwd=tmp_path, check=False)
    finally:
        other.kill()
        other.wait()
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of 2 distinct runs (2 jobs) in {sweep} did not finish: clash: being trained by "
                           f"pid {other.pid}")
    assert f"({held.name}); resume with: python -m mixupexp.train --multirun" in last
    assert not (held / "result.json").exists()  # the other process's directory was not touched


@pytest.mark.slow
def test_two_concurrent_sweeps_into_one_directory_train_each_run_once(tmp_path):
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "mixupexp.train", "--multirun", *QUICK, "trainer.epochs=2",
               "augment=none,mixup", "seed=0,1", f"hydra.sweep.dir={sweep}"]
    procs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outcomes = [(p.wait(timeout=600), p.stderr.read()) for p in procs]
    dirs = run_dirs(sweep)
    assert len(dirs) == 4
    for code, err in outcomes:
        assert code == 0 or (code == 1 and "clash: being trained by" in err.strip().splitlines()[-1]), err
    # Every run trained exactly once, whichever process trained it.
    assert all(trained_times(d) == 1 for d in dirs.values())
    assert all(json.loads((d / "result.json").read_text())["status"] == "ok" for d in dirs.values())


@pytest.mark.slow
def test_missing_data_stops_the_sweep_before_any_job(tmp_path):
    for data in (["data=image_folder", f"data.root={tmp_path / 'missing'}"],
                 ["data=cifar10", f"data.root={tmp_path / 'no_cifar'}", "data.download=false"]):
        sweep = tmp_path / "sweep"
        proc = run_cli(["--multirun", *TINY, *data, "augment=none,mixup", "seed=0,1,2", f"hydra.sweep.dir={sweep}"],
                       cwd=tmp_path, check=False)
        assert proc.returncode == 2
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
        assert not sweep.exists() and not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_ctrl_c_marks_the_run_interrupted_and_prints_the_command_that_resumes_it(tmp_path):
    args = [*QUICK, "trainer.epochs=30"]
    proc = subprocess.Popen([sys.executable, "-m", "mixupexp.train", *args], cwd=tmp_path, preexec_fn=default_sigint,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not glob.glob(str(tmp_path / "outputs" / "runs" / "*" / "checkpoint.pt")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 130
    assert err.strip().splitlines() == [f"interrupted; resume with: python -m mixupexp.train {shlex.join(args)}"]
    (run_dir,) = (tmp_path / "outputs" / "runs").iterdir()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert not (run_dir / LOCK).exists()
    run_cli([*args[:-1], "trainer.epochs=30"], cwd=tmp_path)  # the same command
    assert "resuming" in (run_dir / "train.log").read_text()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "ok"


@pytest.mark.slow
def test_ctrl_c_in_a_sweep_names_its_directory_in_the_resume_command(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "mixupexp.train", "--multirun", *QUICK, "trainer.epochs=30",
                             "seed=0,1"], cwd=tmp_path, preexec_fn=default_sigint, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not glob.glob(str(tmp_path / "outputs" / "multirun" / "*" / "*" / "checkpoint.pt")):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].endswith(f"seed=0,1 hydra.sweep.dir=outputs/multirun/{sweep.name}")


@pytest.mark.slow
def test_parallel_jobs_share_the_cores_instead_of_oversubscribing_them(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from mixupexp.training.device import available_cores

    sweep = tmp_path / "parallel"
    run_cli(["--multirun", "hydra/launcher=parallel", *QUICK, "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]
    n_jobs = available_cores()  # the default on a CPU: one worker per core
    assert [r["threads"] for r in results] == [max(available_cores() // n_jobs, 1)] * 2
    # the thread count changes only the order of float sums: a serial run of the same seed is the same run
    serial = tmp_path / "serial"
    run_cli([*QUICK, "seed=0", f"hydra.run.dir={serial}"], cwd=tmp_path)
    assert json.loads((serial / "result.json").read_text())["run_name"] == results[0]["run_name"]


@pytest.mark.slow
def test_runs_side_by_side_name_their_run_on_every_line_and_a_serial_sweep_does_not(tmp_path):
    import re

    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    proc = run_cli(["--multirun", "hydra/launcher=parallel", *QUICK, "trainer.progress=off", "trainer.epochs=2",
                    "seed=0,1", f"hydra.sweep.dir={tmp_path / 'parallel'}"], cwd=tmp_path)
    names = sorted(p.name for p in (tmp_path / "parallel").glob("*_seed*"))
    output = proc.stdout + proc.stderr
    assert sorted(re.findall(r" - \[(\w+)\] epoch [12]/2 ", output)) == sorted(names * 2)
    assert len(re.findall(r"epoch [12]/2 ", output)) == 4  # every epoch line named
    for name in names:  # each run's own train.log holds its lines as before, unnamed
        log = (tmp_path / "parallel" / name / "train.log").read_text()
        assert re.search(r" - epoch 2/2 ", log) and f"[{name}]" not in log
    serial = run_cli(["--multirun", *QUICK, "trainer.progress=off", "seed=0", f"hydra.sweep.dir={tmp_path / 's'}"],
                     cwd=tmp_path)
    assert re.search(r" - epoch 1/1 ", serial.stdout + serial.stderr)  # one run at a time: the lines as before
