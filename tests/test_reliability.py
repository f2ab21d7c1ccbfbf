"""Resume, failure isolation, atomic writes and one-line errors for bad input."""

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import mixupexp.training.run as train_module
from mixupexp.config.options import registered
from mixupexp.config.schema import ConfigError
from mixupexp.data.datasets import DataError, load_data
from mixupexp.records import files
from mixupexp.records.checkpoint import CHECKPOINT
from mixupexp.records.identity import run_name
from mixupexp.runs.command_plan import check_command_line
from mixupexp.training.engine import DivergedError
from mixupexp.training.run import train

from .conftest import TINY, TINY_TRAINING, compose_config, run_cli
from .sweep_callbacks import FAIL_ENV, FAIL_TARGET, FAILURE
from .test_data import make_folder

# ------------------------------------------------------------------------------------------------- resume


class Killed(BaseException):
    """Stands in for a kill right after a checkpoint was written."""


def interrupt_after_checkpoint(monkeypatch, epoch: int):
    real = train_module.save_checkpoint

    def save_then_die(path, **kwargs):
        real(path, **kwargs)
        if kwargs["epoch"] == epoch:
            raise Killed

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die)


@pytest.mark.parametrize("loader", ["device", "dataloader"])
def test_resumed_run_ends_exactly_like_an_uninterrupted_one(tmp_path, monkeypatch, loader):
    cfg = compose_config([*TINY, "trainer.epochs=3", "augment=mixup", "augment.ratio=0.5", f"trainer.loader={loader}"])
    train(cfg, tmp_path / "whole")
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, epoch=2)
        with pytest.raises(Killed):
            train(cfg, tmp_path / "resumed")
    assert json.loads((tmp_path / "resumed" / "result.json").read_text())["status"] == "running"
    assert (tmp_path / "resumed" / CHECKPOINT).exists()
    train(cfg, tmp_path / "resumed")
    whole, resumed = (pd.read_csv(tmp_path / d / "metrics.csv").drop(columns="seconds") for d in ("whole", "resumed"))
    pd.testing.assert_frame_equal(whole, resumed)
    assert not (tmp_path / "resumed" / CHECKPOINT).exists()  # removed once the run finished


def test_finished_run_is_not_run_again(tmp_path):
    cfg = compose_config([*TINY, "seed=1"])
    first = train(cfg, tmp_path)
    stamp = (tmp_path / "result.json").stat().st_mtime_ns
    again = train(cfg, tmp_path)
    assert again == first and (tmp_path / "result.json").stat().st_mtime_ns == stamp


def test_resume_false_starts_afresh(tmp_path):
    cfg = compose_config([*TINY, "seed=1"])
    train(cfg, tmp_path)
    stamp = (tmp_path / "result.json").stat().st_mtime_ns
    train(compose_config([*TINY, "seed=1", "trainer.resume=false"]), tmp_path)
    assert (tmp_path / "result.json").stat().st_mtime_ns != stamp


def test_directory_of_another_config_is_refused_and_left_alone(tmp_path):
    train(compose_config([*TINY, "seed=1"]), tmp_path)
    before = (tmp_path / "result.json").read_text()
    with pytest.raises(ConfigError, match="holds a run of another config \\(seed: 2 here vs 1 there\\)"):
        train(compose_config([*TINY, "seed=2"]), tmp_path)
    assert (tmp_path / "result.json").read_text() == before


@pytest.mark.slow
def test_cli_refuses_a_run_directory_of_another_config(tmp_path):
    run_dir = tmp_path / "run"
    run_cli([*TINY, f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    proc = run_cli([*TINY, "augment=mixup", f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    # The option that differs first, then what it brings along (mixup's alpha and ratio).
    assert proc.stderr.strip().startswith(
        f"error: {run_dir} holds a run of another config (augment.name: 'mixup' here vs 'none' there; "
        "augment.alpha: 0.2 here vs None there; augment.ratio: 0.2 here vs None there)")
    assert "Traceback" not in proc.stderr


# ------------------------------------------------------------------------------------------------- failures


def test_diverging_loss_stops_the_run_and_marks_it(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=3", "optimizer=sgd", "optimizer.lr=1e30"])
    with pytest.raises(DivergedError):
        train(cfg, tmp_path)
    assert not (tmp_path / "metrics.csv").exists()  # stopped inside the first epoch


@pytest.mark.slow
def test_cli_diverged_run_records_status_and_exits_nonzero(tmp_path):
    run_dir = tmp_path / "run"
    proc = run_cli([*TINY, "optimizer=sgd", "optimizer.lr=1e30", f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: training loss became")
    result = json.loads((run_dir / "result.json").read_text())
    assert result["status"] == "diverged" and "training loss became" in result["error"]


@pytest.mark.slow
def test_failed_job_does_not_stop_the_sweep(tmp_path):
    # A run that fails while it trains (a callback raises at seed 2): the other runs land, the summary counts it.
    sweep = tmp_path / "sweep"
    proc = run_cli(["--multirun", *TINY, "eval.fgsm_eps=[]", "seed=0,1,2", f"hydra.sweep.dir={sweep}",
                    f"+hydra.callbacks.fail._target_={FAIL_TARGET}"], cwd=tmp_path, check=False, env={FAIL_ENV: "2"})
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    # One line: the error once, with the run it stopped, and the command that resumes the sweep.
    assert last.startswith(f"error: 1 of 3 distinct runs (3 jobs) in {sweep} did not finish: failed: RuntimeError: "
                           f"{FAILURE} (none_seed2_")
    assert last.endswith(f"; resume with: python -m mixupexp.train {shlex.join(proc.args[3:])}")
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["n"].item() == 2 and summary["n_failed"].item() == 1
    statuses = sorted(json.loads(p.read_text())["status"] for p in sweep.glob("*/result.json"))
    assert statuses == ["failed", "ok", "ok"]


@pytest.mark.slow
def test_a_sweep_over_an_unreadable_image_folder_is_refused_before_any_run(tmp_path):
    # The images are decoded before any run directory is written: the bad folder stops the command, not a run.
    good = make_folder(tmp_path / "good", size=16, per_class=8)
    bad = make_folder(tmp_path / "bad", size=16, per_class=8)
    (bad / "train" / "dog" / "3.png").write_bytes(b"broken")
    sweep = tmp_path / "sweep"
    proc = run_cli(
        ["--multirun", *TINY_TRAINING, "trainer.batch_size=8", "data=image_folder", f"data.root={good},{bad}",
         f"data.cache_dir={tmp_path / 'cache'}", "seed=0,1", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path, check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and line.count("3.png") == 1
    assert not list(sweep.glob("*/result.json"))


@pytest.mark.slow
def test_killed_sweep_resumes_without_recomputing_finished_runs(tmp_path):
    """SIGKILL a real sweep in the middle of a job, run the same command again, compare with an unbroken sweep."""
    args = [*TINY, "trainer.epochs=4", "augment=mixup", "eval.fgsm_eps=[]", "seed=0,1"]
    sweep = tmp_path / "sweep"
    command = [sys.executable, "-m", "mixupexp.train", "--multirun", *args, f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    job0, job1 = (sweep / run_name(compose_config([*args[:-1], f"seed={seed}"])) for seed in (0, 1))
    # Wait until job 0 has finished and job 1 has written a checkpoint, then kill the whole process group.
    deadline = time.monotonic() + 300
    while not ((job1 / CHECKPOINT).exists() and (job0 / "result.json").exists()):
        assert proc.poll() is None and time.monotonic() < deadline, "sweep ended before it could be killed"
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    first = json.loads((job0 / "result.json").read_text())
    assert first["status"] == "ok"
    assert json.loads((job1 / "result.json").read_text())["status"] == "running"
    assert not (sweep / "summary.csv").exists()

    run_cli(["--multirun", *args, f"hydra.sweep.dir={sweep}"], cwd=tmp_path)  # the lock of the killed job is stale
    assert json.loads((job0 / "result.json").read_text()) == first  # not recomputed
    log = (job1 / "train.log").read_text()
    assert "resuming" in log
    unbroken = tmp_path / "unbroken"
    run_cli(["--multirun", *args, f"hydra.sweep.dir={unbroken}"], cwd=tmp_path)
    pd.testing.assert_frame_equal(pd.read_csv(sweep / "summary.csv").drop(columns="run_dir", errors="ignore"),
                                  pd.read_csv(unbroken / "summary.csv").drop(columns="run_dir", errors="ignore"))
    for job in sorted(p.parent.name for p in unbroken.glob("*/metrics.csv")):
        pd.testing.assert_frame_equal(
            pd.read_csv(sweep / job / "metrics.csv").drop(columns="seconds"),
            pd.read_csv(unbroken / job / "metrics.csv").drop(columns="seconds"),
        )


# ------------------------------------------------------------------------------------------------- atomic writes


def test_interrupted_write_leaves_the_old_file_whole(tmp_path, monkeypatch):
    path = tmp_path / "summary.csv"
    files.write_csv(path, pd.DataFrame({"a": [1, 2]}))
    before = path.read_text()

    class Boom(pd.DataFrame):
        def to_csv(self, target, **kwargs):
            Path(target).write_text("a\n1\n")  # half of the new content, then the process dies
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_csv(path, Boom({"a": [3, 4, 5]}))
    assert path.read_text() == before
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_unserialisable_json_leaves_the_old_file(tmp_path):
    path = tmp_path / "result.json"
    files.write_json(path, {"status": "ok"})
    with pytest.raises(ValueError):
        files.write_json(path, {"x": float("nan"), "loop": None} | {"bad": _SelfRef()})
    assert json.loads(path.read_text()) == {"status": "ok"}


class _SelfRef:
    def __str__(self):
        raise ValueError("cannot be written")


# ------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "argv,message",
    [
        (["augment=mixup", "augment.alpha=0"], "error: augment.alpha=0.0 must be > 0 for augment=mixup"),
        (["augment=mixup", "augment.alpha=-1"], "error: augment.alpha=-1.0 must be > 0 for augment=mixup"),
        (["augment.ratio=2"], "error: augment.ratio=2.0 must be in [0, 1]"),
        (["augment.ratio=-0.5"], "error: augment.ratio=-0.5 must be in [0, 1]"),
        (["trainer.epochs=0"], "error: trainer.epochs=0 must be > 0"),
        (["trainer.batch_size=0"], "error: trainer.batch_size=0 must be > 0"),
        (["optimizer.lr=-0.1"], "error: optimizer.lr=-0.1 must be > 0"),
        (["augment=cutmixx"], "error: In 'config': Could not find 'augment/cutmixx' (available: "
                              f"{', '.join(registered('augment'))})"),
        (["model=resnet"], f"error: In 'config': Could not find 'model/resnet' (available: {', '.join(registered('model'))})"),
        (["trainer.epoch=3"], "error: Could not override 'trainer.epoch': Key 'epoch' not in 'TrainerConfig'"),
        (["+trainer.epoch=3"], "error: unknown key trainer.epoch; known keys: epochs,"),
        (["trainer.epochs=ten"], "error: Error merging override trainer.epochs=ten: Value 'ten' of type 'str' could not be converted to Integer"),
        (["data=image_folder"], "error: data.root is not set"),
        (["--multirun", "augment=mixup", "augment.alpha=0.2,-1", "seed=0,1"], "error: augment.alpha=-1.0 must be > 0"),
        (["+experiment=seed_study", "trainer.epochs=-1"], "error: trainer.epochs=-1 must be > 0"),
        (["augment.alpha=0.1,0.2"], "error: Ambiguous value for argument 'augment.alpha=0.1,0.2': add --multirun"),
        (["model=preact_resnet18", "model.hidden=512"], "error: model.hidden has no effect with model=preact_resnet18; "
                                                        "remove it, or choose an option that uses it"),
        (["augment=none", "augment.alpha=0.4", "data=synthetic"], "error: augment.alpha has no effect with augment=none"),
    ],
)
def test_bad_command_line_gets_one_line_before_any_job(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        check_command_line(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a GPU is present")
def test_cuda_without_gpu_is_refused(capsys):
    with pytest.raises(SystemExit):
        check_command_line(["trainer.device=cuda"])
    assert capsys.readouterr().err == "error: trainer.device=cuda but no CUDA GPU is available; use trainer.device=auto or cpu\n"


def test_good_command_lines_pass_the_check():
    for argv in (["augment=mixup"], ["--multirun", "augment=none,mixup", "seed=0,1"], ["+experiment=seed_study"],
                 ["--cfg", "job"], ["hydra.run.dir=/tmp/x"]):
        argv = [*argv, "data=synthetic"]  # CIFAR-10 is not here (no network): the check would say so
        check_command_line(argv)


def _folder_cases(tmp_path):
    empty = tmp_path / "empty"
    (empty / "train").mkdir(parents=True)
    (empty / "test").mkdir()
    no_test = make_folder(tmp_path / "no_test")
    for p in sorted((no_test / "test").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (no_test / "test").rmdir()
    no_train = make_folder(tmp_path / "no_train")
    os.rename(no_train / "train", no_train / "training")
    classes = make_folder(tmp_path / "classes", test_classes=("cat", "cow"))
    corrupt = make_folder(tmp_path / "corrupt")
    (corrupt / "test" / "cat" / "2.png").write_bytes(b"\x89PNG broken")
    return [
        (tmp_path / "missing", "does not exist"),
        (empty, "holds no images in class folders"),
        (no_test, "has no test/ folder"),
        (no_train, "has no train/ folder"),
        (classes, "different classes (only in train: ['dog'], only in test: ['cow'])"),
        (corrupt, f"cannot decode image {corrupt / 'test' / 'cat' / '2.png'}"),
    ]


def test_bad_image_folders_are_named_in_one_line(tmp_path):
    for root, message in _folder_cases(tmp_path):
        cfg = compose_config(["data=image_folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}"])
        with pytest.raises(DataError) as info:
            load_data(cfg.data)
        assert message in str(info.value) and "\n" not in str(info.value), root


def test_cli_bad_image_folder_gets_one_line_and_no_traceback(tmp_path):
    root, message = _folder_cases(tmp_path)[-1]
    proc = run_cli([*TINY_TRAINING, "data=image_folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                    f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    # The file is named once (PIL's own message names it again).
    assert proc.stderr.strip().splitlines() == [f"error: {message}: cannot identify image file"]


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    files.write_json(tmp_path / "result.json", {"status": "ok"})
    (tmp_path / "plain.txt").write_text("x")
    assert (tmp_path / "result.json").stat().st_mode == (tmp_path / "plain.txt").stat().st_mode


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_a_resumed_run_keeps_its_learning_rate_schedule_exactly(tmp_path, monkeypatch, schedule):
    """The lr of every epoch, and every metric, of a run resumed after epoch 2 of 4 equal an uninterrupted run's."""
    cfg = compose_config([*TINY, "trainer.epochs=4", "eval.fgsm_eps=[]", "optimizer=sgd", "optimizer.lr=0.05",
                          f"optimizer.schedule={schedule}", "optimizer.milestones=[2,3]"])
    real = train_module.train_one_epoch

    def run(out_dir, kill_after=None):
        lrs = []

        def recording(run, epoch):
            lrs.append(run.optimizer.param_groups[0]["lr"])
            return real(run, epoch)

        with monkeypatch.context() as m:
            m.setattr(train_module, "train_one_epoch", recording)
            if kill_after is not None:
                interrupt_after_checkpoint(m, epoch=kill_after)
                with pytest.raises(Killed):
                    train(cfg, out_dir)
            else:
                train(cfg, out_dir)
        return lrs

    whole = run(tmp_path / "whole")
    resumed = run(tmp_path / "resumed", kill_after=2) + run(tmp_path / "resumed")
    assert resumed == whole  # epochs 1, 2, then 3, 4 after the resume: bit for bit
    expected = ([0.05, 0.05, 0.005, 0.0005] if schedule == "step"
                else [0.05 * (1 + math.cos(math.pi * (e - 1) / 4)) / 2 for e in range(1, 5)])
    assert whole == pytest.approx(expected, rel=1e-12)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "whole" / "metrics.csv").drop(columns="seconds"),
                                  pd.read_csv(tmp_path / "resumed" / "metrics.csv").drop(columns="seconds"),
                                  check_exact=True)
    keys = ("test_acc", "test_loss", "test_ece", "train_loss")
    whole_result, resumed_result = (json.loads((tmp_path / d / "result.json").read_text())
                                    for d in ("whole", "resumed"))
    assert {k: whole_result[k] for k in keys} == {k: resumed_result[k] for k in keys}
