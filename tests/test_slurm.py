"""hydra/launcher=slurm against a real SLURM controller: a one-node cluster started on this machine for these
tests (tests/slurm_cluster.py). A sweep lands every run in one job array and accounts for a failing job; a job
requeued mid-run resumes from its checkpoint and ends exactly as an uninterrupted run; the sequential sweeper's
rounds go through SLURM; the dry run shows what the cluster holds. Skipped where SLURM cannot be started."""

import glob
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import REPO, TINY, run_cli
from .slurm_cluster import ClusterUnavailable, start_cluster, why_unavailable
from .sweep_callbacks import FAIL_ENV, FAIL_TARGET, FAILURE

pytestmark = [pytest.mark.slurm,
              pytest.mark.skipif(why_unavailable() is not None, reason=f"no SLURM cluster: {why_unavailable()}")]

# One thread and fp32: a run is then the same run wherever it trains (a job of the cluster or this process).
QUICK = [*TINY, "eval.fgsm_eps=[]", "trainer.threads=1", "trainer.precision=fp32"]
TESTS_ON_PATH = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="module")
def cluster():
    try:
        started = start_cluster()
    except ClusterUnavailable as e:
        pytest.skip(f"no SLURM cluster: {e}")
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(started.env)  # sbatch, squeue, ... of the commands under test talk to this cluster
    print(f"\nSLURM cluster started in {started.startup_seconds:.1f} s")
    yield started
    started.stop()
    if saved is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = saved
    assert not running_daemons(started), "SLURM daemons left running"


def slurm_launcher(cluster, **settings):
    """hydra/launcher=slurm as a user of this CPU-only cluster sets it: its partition, no GPU, one CPU a job."""
    values = {"partition": cluster.partition, "gpus_per_node": 0, "cpus_per_task": 1, "mem_gb": 1,
              "timeout_min": 10, **settings}
    return ["hydra/launcher=slurm", *(f"hydra.launcher.{key}={value}" for key, value in values.items())]


def running_daemons(cluster) -> list[str]:
    """The processes of this cluster still alive (its daemons, its jobs' slurmstepd): their command lines."""
    alive = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if (proc / "stat").read_text().split(") ")[1].startswith("Z"):
                continue  # a zombie left to init: it runs nothing
        except OSError:
            continue
        if str(cluster.root) in cmdline or ("slurmstepd" in cmdline and str(cluster.root) in cmdline):
            alive.append(cmdline)
    return alive


def results(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/result.json")}


def trained_times(run_dir: Path) -> int:
    return (run_dir / "train.log").read_text().count("] - training ")


def wait_for(condition, timeout: float, what: str, proc=None):
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the command exited ({proc.returncode}) before {what}: {proc.stderr.read()}")
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)
    return found


def queue(cluster) -> dict[str, str]:
    """{job id: state} of the jobs the controller lists, array tasks one by one."""
    lines = cluster.command("squeue", "-h", "-r", "-o", "%i %T").stdout.split("\n")
    return dict(line.split() for line in lines if line.strip())


def start_sweep(args: list[str], cwd: Path) -> subprocess.Popen:
    """`python -m mixupexp.train ARGS` started in the background, its output captured."""
    return subprocess.Popen([sys.executable, "-m", "mixupexp.train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_cluster_starts_with_one_idle_node_and_stops_leaving_nothing_running(tmp_path):
    other = start_cluster()
    try:
        print(f"\nSLURM cluster started in {other.startup_seconds:.1f} s")
        sinfo = other.command("sinfo", "-h", "-o", "%P %t %D %c").stdout.split()
        assert sinfo == [f"{other.partition}*", "idle", "1", str(other.cpus)]
        job = other.command("sbatch", "--parsable", "-p", other.partition, "-o", str(tmp_path / "hello.out"),
                            "--wrap", "echo hello from $SLURM_JOB_ID").stdout.strip()
        wait_for(lambda: (tmp_path / "hello.out").exists() and "hello" in (tmp_path / "hello.out").read_text(),
                 60, "output of the test job")
        assert (tmp_path / "hello.out").read_text().strip() == f"hello from {job}"
    finally:
        other.stop()
    assert not running_daemons(other)


def test_a_sweep_lands_every_run_in_one_job_array_and_accounts_for_a_failing_job(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    started = time.perf_counter()
    proc = run_cli(["--multirun", *slurm_launcher(cluster), *QUICK, "seed=0,1,2", f"hydra.sweep.dir={sweep}",
                    f"+hydra.callbacks.fail._target_={FAIL_TARGET}"], cwd=tmp_path, check=False,
                   env={**TESTS_ON_PATH, FAIL_ENV: "2"})
    print(f"\n3-run sweep through SLURM: {time.perf_counter() - started:.1f} s")
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of 3 distinct runs (3 jobs) in {sweep} did not finish: failed: RuntimeError: "
                           f"{FAILURE} (none_seed2_"), last
    found = results(sweep)
    assert sorted((r["config"]["seed"], r["status"]) for r in found.values()) == [(0, "ok"), (1, "ok"), (2, "failed")]
    assert all(trained_times(sweep / name) == 1 for name, r in found.items() if r["status"] == "ok")
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 1 and summary["n"].item() == 2 and summary["n_failed"].item() == 1
    (script,) = glob.glob(str(sweep / ".submitit" / "*" / "*_submission.sh"))  # one job array for the sweep
    assert "#SBATCH --array=0-2%3" in Path(script).read_text()
    assert f"#SBATCH --partition={cluster.partition}" in Path(script).read_text()
    wait_for(lambda: queue(cluster) == {}, 60, "empty queue")  # each job ends once its result is handed back


def test_a_requeued_job_resumes_from_its_checkpoint_and_ends_as_an_uninterrupted_run(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *slurm_launcher(cluster), *QUICK, "trainer.epochs=40", "seed=3", f"hydra.sweep.dir={sweep}"]
    proc = start_sweep(args, tmp_path)
    try:
        checkpoint = Path(wait_for(lambda: glob.glob(str(sweep / "*" / "checkpoint.pt")), 120, "checkpoint", proc)[0])
        (job,) = queue(cluster)
        cluster.command("scontrol", "requeue", job)  # as a preemption does: the job is stopped and queued again
        # A requeued job waits about two minutes (its begin time) before it may start; the test lets it start now.
        wait_for(lambda: queue(cluster).get(job) == "PENDING", 60, "requeued job pending")
        cluster.command("scontrol", "update", f"JobId={job}", "StartTime=now")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    run_dir = checkpoint.parent
    log = (run_dir / "train.log").read_text()
    assert "resuming" in log and "from the checkpoint of epoch " in log and trained_times(run_dir) == 2
    resumed_at = int(log.split("from the checkpoint of epoch ")[1].split()[0])
    assert 1 <= resumed_at < 40
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "ok" and "every run finished" in out

    straight = tmp_path / "straight"  # the same run, never interrupted, in this process
    run_cli([*QUICK, "trainer.epochs=40", "seed=3", f"hydra.run.dir={straight}"], cwd=tmp_path)
    timing = ["seconds"]
    assert pd.read_csv(run_dir / "metrics.csv").drop(columns=timing).equals(
        pd.read_csv(straight / "metrics.csv").drop(columns=timing))
    expected = json.loads((straight / "result.json").read_text())
    for key in ("test_acc", "test_loss", "test_ece", "run_name"):
        assert result[key] == expected[key], key

    stamp = (run_dir / "result.json").stat().st_mtime_ns
    again = run_cli(args, cwd=tmp_path)  # the same command: the finished run is found, not trained again
    assert (run_dir / "result.json").stat().st_mtime_ns == stamp and trained_times(run_dir) == 2
    assert "every run finished" in again.stdout


def test_the_plan_shows_which_jobs_the_cluster_runs_and_queues(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *slurm_launcher(cluster, array_parallelism=1), *QUICK, "trainer.epochs=400", "seed=0,1",
            f"hydra.sweep.dir={sweep}"]
    proc = start_sweep(args, tmp_path)
    try:
        wait_for(lambda: glob.glob(str(sweep / "*" / "checkpoint.pt")), 120, "checkpoint", proc)
        jobs = queue(cluster)
        assert sorted(jobs.values()) == ["PENDING", "RUNNING"]  # one at a time: array_parallelism=1
        array = next(iter(jobs)).split("_")[0]
        plan = run_cli(args, cwd=tmp_path, module="mixupexp.plan").stdout.strip().splitlines()
    finally:
        cluster.command("scancel", "--full", array, check=False)
        proc.terminate()
        proc.communicate(timeout=120)
    assert plan[1].endswith(f"; SLURM job {array}_0: running on localhost") and "running elsewhere" in plan[1]
    assert plan[3].endswith(f": new; SLURM job {array}_1: queued (JobArrayTaskLimit)"), plan[3]
    assert plan[-1] == "SLURM: 1 running, 1 queued"
    wait_for(lambda: queue(cluster) == {}, 60, "empty queue")
    # Once the jobs have left the queue (and without accounting to say how), the plan says so.
    plan = run_cli(args, cwd=tmp_path, module="mixupexp.plan").stdout.strip().splitlines()
    assert plan[-1] == "SLURM: 2 left the queue" and "resumable (epoch " in plan[1]


def test_the_sequential_sweepers_rounds_go_through_slurm(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", "hydra/sweeper=sequential", *slurm_launcher(cluster), *QUICK, "augment=none,mixup",
                    "hydra.sweeper.max_seeds=5", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    found = results(sweep)
    rounds = glob.glob(str(sweep / ".submitit" / "*" / "*_submission.sh"))  # one job array per round
    assert len(rounds) >= 1 and all(r["status"] == "ok" for r in found.values())
    seeds = {name: sorted(r["config"]["seed"] for r in found.values() if r["config"]["augment"]["name"] == name)
             for name in ("none", "mixup")}
    assert seeds["none"][:3] == [0, 1, 2] and seeds["mixup"][:3] == [0, 1, 2] and len(seeds["none"]) <= 5
    assert f"{len(found)} jobs" in proc.stdout and "every run finished" in proc.stdout
    jobs_per_round = sorted(int(Path(r).read_text().split("--array=0-")[1].split("%")[0]) + 1 for r in rounds)
    assert sum(jobs_per_round) == len(found) and jobs_per_round[-1] == 6  # the first round: 3 seeds of each arm


def test_the_signal_before_the_time_limit_requeues_the_job_and_it_resumes(cluster, tmp_path):
    """SLURM sends USR2 signal_delay_s before a job's time limit (`#SBATCH --signal=USR2@...`); submitit then
    requeues the job itself. The signal is sent here as SLURM would, without waiting for a limit."""
    sweep = tmp_path / "sweep"
    args = ["--multirun", *slurm_launcher(cluster), *QUICK, "trainer.epochs=40", "seed=4", f"hydra.sweep.dir={sweep}"]
    proc = start_sweep(args, tmp_path)
    try:
        checkpoint = Path(wait_for(lambda: glob.glob(str(sweep / "*" / "checkpoint.pt")), 120, "checkpoint", proc)[0])
        (job,) = queue(cluster)
        cluster.command("scancel", "--signal=USR2", job)
        wait_for(lambda: queue(cluster).get(job) == "PENDING", 60, "requeued job pending")
        cluster.command("scontrol", "update", f"JobId={job}", "StartTime=now")
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    log = (checkpoint.parent / "train.log").read_text()
    assert "from the checkpoint of epoch " in log and trained_times(checkpoint.parent) == 2
    assert json.loads((checkpoint.parent / "result.json").read_text())["status"] == "ok"
    assert "every run finished" in out


def test_a_cancelled_job_ends_the_sweep_naming_it_and_the_same_command_trains_it(cluster, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["--multirun", *slurm_launcher(cluster, array_parallelism=1), *QUICK, "trainer.epochs=2", "seed=0,1",
            f"hydra.sweep.dir={sweep}"]
    proc = start_sweep(args, tmp_path)
    try:
        jobs = wait_for(lambda: queue(cluster) if len(queue(cluster)) == 2 else None, 60, "two jobs queued", proc)
        # scancel, as a user or an administrator does: the job leaves the queue and never writes a result.
        cancelled = sorted(jobs, key=lambda job: int(job.split("_")[1]))[1]
        cluster.command("scancel", cancelled)
        out, err = proc.communicate(timeout=240)  # submitit alone waits for its result for ever
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of 2 distinct runs (2 jobs) in {sweep} did not finish: "), last
    assert "none_seed1_" in last and "resume with: python -m mixupexp.train" in last
    assert sorted(r["config"]["seed"] for r in results(sweep).values() if r["status"] == "ok") == [0]
    again = run_cli(args, cwd=tmp_path)  # the same command: seed 0 is found finished, seed 1 is trained
    assert sorted(r["config"]["seed"] for r in results(sweep).values() if r["status"] == "ok") == [0, 1]
    assert "every run finished" in again.stdout


def test_a_tuning_sweeps_trials_and_confirmation_go_through_slurm(cluster, tmp_path):
    pytest.importorskip("optuna")
    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", "hydra/sweeper=tune", *slurm_launcher(cluster), *QUICK, "data.val_size=64",
                    "augment=mixup", "augment.alpha=interval(0.05,2.0)", "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.racing=false", "hydra.sweeper.seeds_per_trial=2", "hydra.sweeper.confirm.min_seeds=2",
                    "hydra.sweeper.confirm.max_seeds=2", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    record = json.loads((sweep / "tune.json").read_text())
    assert [t["state"] for t in record["trials"]] == ["complete", "complete"]
    confirm = sweep / record["confirm"]["dir"]
    assert sorted((r["config"]["augment"]["name"], r["config"]["seed"]) for r in results(confirm).values()) == [
        ("mixup", 2), ("mixup", 3), ("none", 2), ("none", 3)]
    # One job array per launch: each trial's seeds, then the confirmation's round.
    assert len(glob.glob(str(sweep / ".submitit" / "*" / "*_submission.sh"))) == 3
    assert "every run finished" in proc.stdout
