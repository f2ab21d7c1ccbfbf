"""Faults and bad input: nothing a run wrote is lost or rewritten by a later command, nothing is misread silently,
and every refusal is one line.

Faults are injected at the exact write (os.replace, or tests/inject.py for a whole command), never timed.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from mixupexp.config.schema import ConfigError
from mixupexp.data.datasets import DataError, load_data
from mixupexp.records.checkpoint import CHECKPOINT, CheckpointError, read_checkpoint
from mixupexp.records.checksums import checksums
from mixupexp.records.lock import LOCK, RunLocked, run_lock
from mixupexp.runs.command_plan import check_command_line
from mixupexp.training.run import record_failure, train

from .conftest import REPO, TINY, TINY_TRAINING, compose_config, run_cli
from .fabricate import write_run
from .test_data import folder_cfg, make_folder
from .test_reliability import Killed, interrupt_after_checkpoint

QUICK = [*TINY, "eval.fgsm_eps=[]"]
INJECT = REPO / "tests" / "inject.py"


def inject(fault: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """`python -m mixupexp.train ARGS` with the fault `fault` (tests/inject.py) at its exact write."""
    return subprocess.run([sys.executable, str(INJECT), *args], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HYDRA_FULL_ERROR": "0", "MIXUPEXP_FAULT": fault})


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory` with its bytes and modification time: what "left as it was" compares."""
    return {str(p.relative_to(directory)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*")) if p.is_file()}


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").drop(columns="seconds")


# ------------------------------------------------------------------------------------------------- data lost


def test_a_kill_between_the_last_checkpoint_and_its_metrics_loses_no_epoch(tmp_path, monkeypatch):
    """Killed after the last epoch's checkpoint is in place and before metrics.csv is: the rerun writes the
    checkpoint's rows before it does anything else, so the finished run holds every epoch."""
    cfg = compose_config([*QUICK, "trainer.epochs=3"])
    train(cfg, tmp_path / "whole")
    real, renamed = os.replace, []

    def replace(src, dst):
        if Path(dst).name == "metrics.csv":
            renamed.append(dst)
            if len(renamed) == 3:  # epoch 3's metrics.csv: checkpoint.pt of epoch 3 was renamed just before
                assert read_checkpoint(Path(dst).parent / CHECKPOINT)["epoch"] == 3
                raise Killed
        real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(os, "replace", replace)
        with pytest.raises(Killed):
            train(cfg, tmp_path / "run")
    assert len(metrics(tmp_path / "run")) == 2
    result = train(cfg, tmp_path / "run")
    pd.testing.assert_frame_equal(metrics(tmp_path / "run"), metrics(tmp_path / "whole"))
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["status"] == "ok"
    assert saved["test_acc"] == result["test_acc"] == metrics(tmp_path / "run")["test_acc"].iloc[-1]
    assert saved["test_acc"] == json.loads((tmp_path / "whole" / "result.json").read_text())["test_acc"]


def test_a_refused_command_leaves_the_finished_runs_hydra_config_and_evaluate_measures_the_run(tmp_path):
    run_dir = tmp_path / "run"
    train(compose_config(QUICK), run_dir)
    before = snapshot(run_dir)
    proc = run_cli([*QUICK, "data.noise=30", f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc).startswith(f"error: {run_dir} holds a run of another config (data.noise: 30.0 here")
    assert snapshot(run_dir) == before  # .hydra/ included: nothing written, not even to train.log
    from mixupexp.runs.reevaluate import evaluate_run

    _, evaluation = evaluate_run(run_dir, [])
    assert evaluation["data"]["noise"] == 60.0  # the run's own data, not the refused command's


def test_evaluate_reads_the_runs_result_config_before_hydra_dir(tmp_path):
    from omegaconf import OmegaConf

    from mixupexp.runs.reevaluate import saved_config

    write_run(tmp_path, "none", 0, 50.0, config={"data": {"name": "synthetic", "noise": 60.0}})
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml({"data": {"name": "synthetic", "noise": 1.0}}))
    assert saved_config(tmp_path)["data"]["noise"] == 60.0


@pytest.fixture
def sleeper():
    """A live process of another command, to hold a lock."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    yield proc
    proc.kill()
    proc.wait()


def plant_lock(run_dir: Path, pid: int, **extra) -> None:
    (run_dir / LOCK).write_text(json.dumps({"pid": pid, "host": os.uname().nodename, "invocation": "another command",
                                            "since": "a minute ago", **extra}))


def test_a_run_that_clashes_with_a_running_one_leaves_its_directory_alone(tmp_path, sleeper):
    run_dir = tmp_path / "run"
    train(compose_config(QUICK), run_dir)
    plant_lock(run_dir, sleeper.pid)
    before = snapshot(run_dir)
    # The same run with other evaluation settings: the same directory, another .hydra/config.yaml if written.
    proc = run_cli([*TINY, "eval.fgsm_eps=[1]", f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert one_error_line(proc) == (f"error: {run_dir} is being trained by pid {sleeper.pid} on {os.uname().nodename} "
                                    "since a minute ago; run the command again once it has finished")
    assert snapshot(run_dir) == before


@pytest.mark.slow
def test_a_sweep_job_that_clashes_leaves_the_runs_hydra_config_alone(tmp_path, sleeper):
    from mixupexp.records.identity import run_name

    sweep = tmp_path / "sweep"
    held = sweep / run_name(compose_config([*QUICK, "seed=0"]))
    train(compose_config([*QUICK, "seed=0"]), held)
    plant_lock(held, sleeper.pid)
    before = snapshot(held / ".hydra")
    proc = run_cli(["--multirun", *TINY, "eval.fgsm_eps=[1]", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path,
                   check=False)
    assert proc.returncode == 1 and "clash: being trained by" in proc.stderr.strip().splitlines()[-1]
    assert snapshot(held / ".hydra") == before
    assert len(list(sweep.glob("*/result.json"))) == 2  # the other job trained


def test_a_lock_path_that_is_a_directory_leaves_a_finished_run_as_it_was(tmp_path):
    run_dir = tmp_path / "run"
    train(compose_config(QUICK), run_dir)
    (run_dir / LOCK).mkdir()
    before = snapshot(run_dir)
    proc = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc) == (f"error: {run_dir / LOCK} is a directory, not a lock file; remove it "
                                    f"(rmdir {run_dir / LOCK}) and run the command again")
    assert snapshot(run_dir) == before
    with pytest.raises(ConfigError, match="is a directory, not a lock file"):  # and under the lock, in the run
        with run_lock(run_dir):
            pass


def test_an_error_before_the_run_starts_never_marks_a_finished_run_failed(tmp_path):
    cfg = compose_config(QUICK)
    train(cfg, tmp_path)
    before = (tmp_path / "result.json").read_bytes()
    assert record_failure(tmp_path, cfg, IsADirectoryError(21, "Is a directory")) == "failed"
    assert (tmp_path / "result.json").read_bytes() == before


DAMAGED_RESULTS = {
    "truncated": lambda text: text[: len(text) // 2],
    "a list": lambda text: "[]",
    "null": lambda text: "null",
    "no config": lambda text: json.dumps({"config": None}),
    "ok without test_acc": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "test_acc"}),
    "test_acc not a number": lambda text: json.dumps({**json.loads(text), "test_acc": "abc"}),
}
DAMAGE_NAMED = {
    "truncated": "is not valid JSON", "a list": "is not a JSON object", "null": "is not a JSON object",
    "no config": "holds no config", "ok without test_acc": "says status ok but has no test_acc",
    "test_acc not a number": "has test_acc 'abc', not a number",
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("finished")
    train(compose_config(QUICK), run_dir)
    return run_dir


@pytest.mark.parametrize("damage", list(DAMAGED_RESULTS))
def test_a_damaged_result_is_named_and_never_trained_over(finished_run, tmp_path, damage):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("result.json", "metrics.csv", "model.pt"):
        (run_dir / name).write_bytes((finished_run / name).read_bytes())
    (run_dir / "result.json").write_text(DAMAGED_RESULTS[damage]((finished_run / "result.json").read_text()))
    before = snapshot(run_dir)
    with pytest.raises(ConfigError) as info:
        train(compose_config(QUICK), run_dir)
    message = str(info.value)
    assert message.startswith(f"{run_dir / 'result.json'} {DAMAGE_NAMED[damage]}") and "\n" not in message
    assert "move it out of the way" in message
    assert snapshot(run_dir) == before


def test_cli_a_damaged_result_is_one_line_and_exit_2(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "result.json").write_text("[]")
    proc = run_cli([*QUICK, f"hydra.run.dir={run_dir}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert one_error_line(proc).startswith(f"error: {run_dir / 'result.json'} is not a JSON object")
    assert (run_dir / "result.json").read_text() == "[]"
    assert sorted(p.name for p in run_dir.iterdir()) == ["result.json"]


def test_summaries_name_every_result_they_leave_out(tmp_path, capsys):
    from mixupexp import summarize

    for seed in range(2):
        write_run(tmp_path / f"ok{seed}", "none", seed, 70.0 + seed)
    template = json.dumps(json.loads((tmp_path / "ok0" / "result.json").read_text()))
    bad = {}
    for damage, make in DAMAGED_RESULTS.items():
        path = tmp_path / damage.replace(" ", "_") / "result.json"
        path.parent.mkdir()
        path.write_text(make(template))
        bad[str(path)] = DAMAGE_NAMED[damage].removeprefix("is ")
    assert summarize.main([str(tmp_path), "--no-plots"]) == 0
    out = capsys.readouterr().out
    for path, why in bad.items():
        assert f"left out: {path} ({why}" in out
    markdown = (tmp_path / "summary.md").read_text()
    assert markdown.startswith("# Summary\n\n2 finished runs in 1 configuration")
    assert all(f"left out: {path} (" in markdown for path in bad)
    assert pd.read_csv(tmp_path / "summary.csv")["n"].tolist() == [2]


def test_summarize_into_a_directory_that_refuses_writes_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys):
    """A read-only file system under the sweep directory, as a mount would refuse it (root ignores a mode)."""
    from mixupexp import summarize

    for seed in range(2):
        write_run(tmp_path / f"ok{seed}", "none", seed, 70.0 + seed)
    before = snapshot(tmp_path)
    real = os.replace

    def read_only(src, dst):
        if Path(dst).parent == tmp_path:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(dst))
        real(src, dst)

    monkeypatch.setattr(os, "replace", read_only)
    assert summarize.main([str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: cannot write {tmp_path / 'runs.csv'}: read-only file system; write the "
                                   "summary elsewhere with --out DIR") and captured.err.count("\n") == 1
    assert snapshot(tmp_path) == before


# ------------------------------------------------------------------------------------------------- misread silently


def test_a_link_loop_in_an_image_folder_does_not_repeat_its_images(tmp_path, caplog):
    root = make_folder(tmp_path / "set", per_class=4)
    os.symlink("..", root / "train" / "cat" / "loop")
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        data = load_data(folder_cfg(root, tmp_path))
    assert len(data.train_labels) == 8 and len(data.test_labels) == 8
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "not followed" in warning and str(root / "train" / "cat" / "loop") in warning


def test_hidden_files_and_folders_are_neither_classes_nor_images(tmp_path):
    root = make_folder(tmp_path / "set")
    for split in ("train", "test"):
        hidden = root / split / ".ipynb_checkpoints"
        hidden.mkdir()
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(hidden / "0.png")
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / split / "cat" / ".hidden.png")
    data = load_data(folder_cfg(root, tmp_path))
    assert data.classes == ["cat", "dog"] and len(data.train_labels) == 6


def test_an_image_folder_with_one_class_is_refused(tmp_path):
    root = make_folder(tmp_path / "set", classes=("cat",))
    with pytest.raises(DataError, match=f"{root / 'train'} has a single class folder \\(cat\\): a classifier needs at "
                                        "least 2 classes"):
        load_data(folder_cfg(root, tmp_path))


def test_a_broken_link_in_an_image_folder_is_named_before_any_job(tmp_path, capsys):
    root = make_folder(tmp_path / "set")
    link = root / "train" / "dog" / "9.png"
    os.symlink(tmp_path / "gone.png", link)
    with pytest.raises(SystemExit) as info:
        check_command_line([*TINY_TRAINING, "data=image_folder", f"data.root={root}",
                            f"data.cache_dir={tmp_path / 'cache'}"])
    assert info.value.code == 2
    assert capsys.readouterr().err == (f"error: {link} is a broken link (to {tmp_path / 'gone.png'}); remove it or "
                                       "restore the file it points to\n")


def _cache_file(tmp_path: Path) -> Path:
    (path,) = (tmp_path / "cache").glob("*.pt")
    return path


def test_another_folders_cache_under_this_folders_name_is_not_trusted(tmp_path, caplog):
    this, other = make_folder(tmp_path / "this", per_class=8), make_folder(tmp_path / "other", per_class=12)
    load_data(folder_cfg(other, tmp_path / "o"))
    load_data(folder_cfg(this, tmp_path))
    _cache_file(tmp_path).write_bytes(_cache_file(tmp_path / "o").read_bytes())  # copied over, under this name
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        data = load_data(folder_cfg(this, tmp_path))
    assert len(data.train_labels) == 16
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.startswith(f"the cache {_cache_file(tmp_path)} is not used: it was decoded from other files")
    assert len(load_data(folder_cfg(this, tmp_path)).train_labels) == 16  # and the rebuilt cache is this folder's


def _keep_times_replace(path: Path, data: bytes) -> None:
    """Write `data` over `path` and put its modification time back, as `cp -p`, `rsync -t` and `tar x` do."""
    st = path.stat()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


@pytest.mark.parametrize("verify", ["stat", "content"])
@pytest.mark.parametrize("change", ["pixels replaced, times kept", "two images swapped between classes"])
def test_a_cache_is_not_fooled_by_kept_modification_times(tmp_path, caplog, verify, change):
    root = make_folder(tmp_path / "set", per_class=4, size=16)
    cfg = folder_cfg(root, tmp_path, f"data.cache_verify={verify}")
    load_data(cfg)
    cat, dog = root / "train" / "cat" / "0.png", root / "train" / "dog" / "0.png"
    if change == "pixels replaced, times kept":
        _keep_times_replace(cat, dog.read_bytes())  # the same size: both are 16×16 random-noise PNGs
    else:
        a, b = cat.read_bytes(), dog.read_bytes()
        _keep_times_replace(cat, b)
        _keep_times_replace(dog, a)
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        data = load_data(cfg)
    assert not any("read from the cache" in r.getMessage() for r in caplog.records)
    fresh = load_data(folder_cfg(root, tmp_path / "fresh"))
    assert torch.equal(data.train_images, fresh.train_images)


def test_flipped_bytes_in_a_cache_are_found_and_it_is_rebuilt(tmp_path, caplog):
    root = make_folder(tmp_path / "set", per_class=8, size=16)
    decoded = load_data(folder_cfg(root, tmp_path))
    path = _cache_file(tmp_path)
    raw = bytearray(path.read_bytes())
    at = raw.find(decoded.train_images.numpy().tobytes())
    assert at > 0
    raw[at: at + 3072] = bytes(b ^ 0xFF for b in raw[at: at + 3072])
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        data = load_data(folder_cfg(root, tmp_path))
    assert torch.equal(data.train_images, decoded.train_images)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "train_images do not match their checksum (the file is damaged)" in warning


@pytest.mark.parametrize("override,message", [
    ("seed=-1", "seed=-1 must be an integer in [0, 4294967295]"),
    (f"seed={2**40}", f"seed={2**40} must be an integer in [0, 4294967295]"),
    ("data.data_seed=-1", "data.data_seed=-1 must be >= 0"),
    ("data.noise=-1", "data.noise=-1.0 must be a finite number >= 0"),
    ("data.noise=nan", "data.noise=nan must be a finite number >= 0"),
    ("data.signal=inf", "data.signal=inf must be a finite number >= 0"),
    ("optimizer.weight_decay=nan", "optimizer.weight_decay=nan must be a finite number >= 0"),
    ("optimizer.weight_decay=inf", "optimizer.weight_decay=inf must be a finite number >= 0"),
    ("optimizer=sgd optimizer.momentum=-1", "optimizer.momentum=-1.0 must be in [0, 1)"),
    ("optimizer=sgd optimizer.momentum=nan", "optimizer.momentum=nan must be in [0, 1)"),
    ("optimizer=sgd optimizer.nesterov=true optimizer.momentum=0",
     "optimizer.nesterov=true needs optimizer.momentum > 0"),
    ("optimizer.lr=inf", "optimizer.lr=inf must be a finite number > 0"),
    ("data.image_size=-5", "data.image_size=-5 must be >= 1"),
    ("data.image_size=0", "data.image_size=0 must be >= 1"),
    ("data.image_size=1", "model.widths=[8, 16, 16, 16] has 4 blocks, each halving the image: the images of "
                          "data=synthetic (1×1) would shrink to nothing; use data.image_size=16 or more"),
    ("data.image_size=32 model.widths=[8,8,8,8,8,8]", "model.widths=[8, 8, 8, 8, 8, 8] has 6 blocks, each halving "
                                                      "the image: the images of data=synthetic (32×32) would shrink "
                                                      "to nothing; use at most 5 values in model.widths or "
                                                      "data.image_size=64 or more"),
    ("logger=tensorboard +logger.tensorboard.dirr=x", "unknown key logger.tensorboard.dirr; known keys: dir (did you "
                                                      "mean logger.tensorboard.dir=x?)"),
    ("+logger.tensorboard.dirr=x", "logger.tensorboard.dirr cannot be set: logger tensorboard is not chosen; add "
                                   "logger=tensorboard (or logger=[csv,tensorboard])"),
])
def test_values_that_cannot_work_are_one_line_naming_the_key_before_anything_is_written(override, message, capsys):
    with pytest.raises(SystemExit) as info:
        check_command_line([*QUICK, *override.split()])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.count("\n") == 1


@pytest.mark.parametrize("case,message", [
    ("corrupt jpeg", "cannot decode image"),
    ("text named png", "cannot decode image"),
    ("mixed sizes", "images differ in size"),
    ("batch larger than the data", "trainer.batch_size=64 is not smaller than the training set (32 images)"),
    ("huge", "data.num_train=1000000000000"),
    ("threads", "trainer.threads=100000"),
    ("epochs", "trainer.epochs=1000000000000"),
])
def test_data_and_limits_are_refused_before_any_directory_is_written(tmp_path, monkeypatch, capsys, case, message):
    import mixupexp.train as cli

    root = make_folder(tmp_path / "set", per_class=16, size=16)
    extra = [*TINY_TRAINING, "eval.fgsm_eps=[]", "data=image_folder", f"data.root={root}",
             f"data.cache_dir={tmp_path / 'cache'}", "trainer.batch_size=4"]
    if case == "corrupt jpeg":
        Image.new("RGB", (16, 16)).save(root / "train" / "cat" / "x.jpg")
        raw = (root / "train" / "cat" / "x.jpg").read_bytes()
        (root / "train" / "cat" / "x.jpg").write_bytes(raw[:len(raw) // 3])
    elif case == "text named png":
        (root / "test" / "dog" / "notes.png").write_text("not an image\n")
    elif case == "mixed sizes":
        Image.new("RGB", (24, 24)).save(root / "train" / "dog" / "big.png")
    elif case == "batch larger than the data":
        extra.append("trainer.batch_size=64")
    else:
        extra = [*QUICK, *{"huge": ["data.num_train=1000000000000"], "threads": ["trainer.threads=100000"],
                           "epochs": ["trainer.epochs=1000000000000"]}[case]]
    monkeypatch.setattr(sys, "argv", ["mixupexp.train", *extra, f"hydra.run.dir={tmp_path / 'run'}"])
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err.strip().splitlines()
    assert info.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_images_too_small_for_the_model_are_named_when_an_image_folder_is_loaded(tmp_path):
    root = make_folder(tmp_path / "set", size=8)
    cfg = compose_config(["data=image_folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                          *TINY_TRAINING, "trainer.batch_size=2"])
    with pytest.raises(ConfigError, match=r"^model.widths=\[8, 16, 16, 16\] has 4 blocks, each halving the image: the "
                                          r"images of data=image_folder \(8×8\) would shrink to nothing; use at most 3 "
                                          r"values in model.widths or data.image_size=16 or more$"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "result.json").exists()


# ------------------------------------------------------------------------------------------------- faults


@pytest.mark.parametrize("fault,file", [("checkpoint.pt:1:during:ENOSPC", "checkpoint.pt"),
                                        ("result.json:1:during:EROFS", "result.json")])
def test_a_refused_write_is_one_line_naming_the_file(tmp_path, fault, file):
    run_dir = tmp_path / "run"
    proc = inject(fault, [*QUICK, "trainer.epochs=2", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 1
    reason = {"ENOSPC": "no space left on device; free some space there", "EROFS": "read-only file system; choose"}
    assert one_error_line(proc).startswith(f"error: cannot write {run_dir / file}: {reason[fault.split(':')[-1]]}")
    assert not [p for p in run_dir.rglob("*") if p.is_file() and p.stat().st_size == 0]  # no empty files left
    assert not list(run_dir.glob(".*.tmp"))


def test_a_full_disk_under_torch_save_is_named_not_reported_as_torchs_enforce_failure(tmp_path, monkeypatch):
    from mixupexp.records import files

    def full(obj, f):  # what torch.save does when the file's write runs out of space
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(OSError) as info:  # a WriteError, one line naming the file
        files.atomic_torch_save({"weights": torch.zeros(3)}, tmp_path / CHECKPOINT)
    assert str(info.value).startswith(f"cannot write {tmp_path / CHECKPOINT}: no space left on device; free some")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("statvfs,reason", [("read-only", "read-only file system"),
                                            ("full", "no space left on device (0 bytes free)")])
def test_an_output_directory_that_cannot_be_written_is_refused_before_hydra_writes(tmp_path, monkeypatch, capsys,
                                                                                   statvfs, reason):
    from mixupexp.runs.directories import check_directories

    real = os.statvfs

    class Full:
        def __init__(self, path):
            stats = real(path)
            self.f_flag = stats.f_flag | (os.ST_RDONLY if statvfs == "read-only" else 0)
            self.f_bavail, self.f_frsize = (stats.f_bavail if statvfs == "read-only" else 0), stats.f_frsize

    monkeypatch.setattr(os, "statvfs", Full)
    plan = check_command_line([*QUICK, f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(SystemExit) as info:
        check_directories(plan)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {tmp_path / 'run'} (in {tmp_path}): {reason}") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


def _interrupted_run(cfg, run_dir, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, epoch=1)
        with pytest.raises(Killed):
            train(cfg, run_dir)


def test_a_checkpoint_whose_state_does_not_fit_is_set_aside(tmp_path, monkeypatch, caplog):
    cfg = compose_config([*QUICK, "trainer.epochs=2"])
    run_dir = tmp_path / "run"
    _interrupted_run(cfg, run_dir, monkeypatch)
    state = torch.load(run_dir / CHECKPOINT, weights_only=True)
    state["model"]["blocks.0.0.weight"] = torch.zeros(3, 3, 3, 3)  # another model's first layer
    state["checksum"] = checksums({k: v for k, v in state.items() if k != "checksum"})  # written so, not damaged
    torch.save(state, run_dir / CHECKPOINT)
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        assert train(cfg, run_dir)["status"] == "ok"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [aside] = run_dir.glob(f"{CHECKPOINT}.corrupt-*")
    assert warning.startswith(f"{run_dir / CHECKPOINT} does not fit this run (RuntimeError: Error(s) in loading "
                              "state_dict for SimpleCNN: size mismatch for blocks.0.0.weight")
    assert warning.endswith(f"set aside, moved to {aside.name}, starting afresh")
    train(cfg, tmp_path / "fresh")
    pd.testing.assert_frame_equal(metrics(run_dir), metrics(tmp_path / "fresh"))  # nothing of it was kept


def _xor_tensor_records(path: Path, which) -> list[str]:
    """XOR bytes inside the chosen tensor records of the torch file `path`, leaving the zip itself valid (its
    records are stored, not compressed, and torch does not check their CRC); the records' names."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        records = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 4]
    chosen = which(records)
    raw = bytearray(path.read_bytes())
    for info in chosen:
        header = info.header_offset
        start = header + 30 + int.from_bytes(raw[header + 26:header + 28], "little") + \
            int.from_bytes(raw[header + 28:header + 30], "little")
        for k in range(start + info.file_size // 2, start + info.file_size // 2 + 4):
            raw[k] ^= 0x5A
    path.write_bytes(bytes(raw))
    return [info.filename for info in chosen]


@pytest.mark.parametrize("which", [lambda r: r[:1], lambda r: r[len(r) // 2:][:1], lambda r: r[-1:], lambda r: r],
                         ids=["first", "middle", "last", "every"])
def test_bytes_damaged_inside_a_checkpoints_tensor_records_are_found(tmp_path, which):
    from mixupexp.records.checkpoint import save_checkpoint

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    model(torch.zeros(1, 3, 8, 8))
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 3, 8, 8)).sum().backward()
    optimizer.step()  # exp_avg, exp_avg_sq and step exist
    save_checkpoint(tmp_path / CHECKPOINT, model=model, optimizer=optimizer, schedule=None, epoch=1,
                    rows=[{"epoch": 1, "train_loss": 1.0}], train_seconds=1.0, loader_generator=torch.Generator())
    read_checkpoint(tmp_path / CHECKPOINT)
    damaged = _xor_tensor_records(tmp_path / CHECKPOINT, which)
    torch.load(tmp_path / CHECKPOINT, weights_only=True)  # still loads: only the checksums can tell
    with pytest.raises(CheckpointError, match=r"is damaged: .* do not match the checksums written with it") as info:
        read_checkpoint(tmp_path / CHECKPOINT)
    assert len(str(info.value).splitlines()) == 1 and damaged


@pytest.mark.slow
def test_a_checkpoint_damaged_inside_its_tensors_is_set_aside_and_the_run_starts_afresh(tmp_path, monkeypatch,
                                                                                       caplog):
    cfg = compose_config([*QUICK, "trainer.epochs=2"])
    train(cfg, tmp_path / "fresh")
    for name, which in {"first": lambda r: r[:1], "last": lambda r: r[-1:]}.items():
        run_dir = tmp_path / name
        _interrupted_run(cfg, run_dir, monkeypatch)
        assert _xor_tensor_records(run_dir / CHECKPOINT, which)
        torch.load(run_dir / CHECKPOINT, weights_only=True)  # still loads: only the checksums can tell
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="mixupexp"):
            assert train(cfg, run_dir)["status"] == "ok"
        [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        [aside] = run_dir.glob(f"{CHECKPOINT}.corrupt-*")
        assert warning.startswith(f"{run_dir / CHECKPOINT} is damaged: "), warning
        assert warning.endswith(f"set aside, moved to {aside.name}, starting afresh")
        pd.testing.assert_frame_equal(metrics(run_dir), metrics(tmp_path / "fresh"))


def test_a_pickle_that_runs_code_is_refused_without_advice_to_load_it_unsafely(tmp_path):
    class Payload:
        def __reduce__(self):
            return os.system, ("touch " + str(tmp_path / "ran"),)

    torch.save({"epoch": 1, "model": Payload()}, tmp_path / CHECKPOINT)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / CHECKPOINT)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / CHECKPOINT} is not a plain checkpoint (it refers to ")
    assert "refused as unsafe" in message and "weights_only" not in message and "Re-running" not in message
    assert not (tmp_path / "ran").exists()


@pytest.mark.slow
def test_sigterm_marks_the_run_interrupted_releases_its_lock_and_exits_143(tmp_path):
    run_dir = tmp_path / "run"
    args = [*QUICK, "trainer.epochs=3", f"hydra.run.dir={run_dir}"]
    proc = inject("checkpoint.pt:1:after:SIGTERM", args, cwd=tmp_path)
    assert proc.returncode == 143
    resume = f"interrupted; resume with: python -m mixupexp.train {shlex.join(args)}"
    assert proc.stderr.strip().splitlines() == [resume]
    assert json.loads((run_dir / "result.json").read_text())["status"] == "interrupted"
    assert not (run_dir / LOCK).exists() and (run_dir / CHECKPOINT).exists()
    cfg = compose_config(args[:-1])
    train(cfg, run_dir)
    train(cfg, tmp_path / "whole")
    pd.testing.assert_frame_equal(metrics(run_dir), metrics(tmp_path / "whole"))


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    import mixupexp.train as cli

    def interrupted(argv, **options):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "check_command_line", interrupted)
    monkeypatch.setattr(sys, "argv", ["mixupexp.train", *QUICK])
    handler = signal.getsignal(signal.SIGTERM)
    try:
        cli.main()
        code = "returned"
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:
        code = "a traceback"
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert code == 130
    assert capsys.readouterr().err == "interrupted; resume with: the same command\n"


def test_a_lock_whose_pid_now_belongs_to_another_process_is_taken_over(tmp_path, sleeper):
    plant_lock(tmp_path, sleeper.pid, process_start="another boot:12345")
    with run_lock(tmp_path):  # the pid lives, but it is not the process that took the lock
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()
    from mixupexp.records.lock import process_start

    plant_lock(tmp_path, sleeper.pid, process_start=process_start(sleeper.pid))
    with pytest.raises(RunLocked):  # the very process that took it: held
        with run_lock(tmp_path):
            pass


def test_a_stale_lock_found_by_two_processes_is_taken_over_by_one(tmp_path, monkeypatch):
    """B finds the stale lock and, before it takes it over, A (the same command) takes it over too: only A may
    hold it. The second taker is let run at the point between B's stale check and B's takeover."""
    from contextlib import ExitStack

    from mixupexp.records import lock

    plant_lock(tmp_path, 2**22 + 12345)  # a pid above the kernel's pid_max: no process has it
    real, stack, turns = lock.live_holder, ExitStack(), []

    def second_taker_runs_first(run_dir):
        holder = real(run_dir)
        if holder is None and not turns:  # B judged it stale: A takes it over now, and keeps it
            turns.append("A")
            stack.enter_context(run_lock(run_dir))
            turns.append((Path(run_dir) / LOCK).read_text())
        return holder

    monkeypatch.setattr(lock, "live_holder", second_taker_runs_first)
    with stack:
        with pytest.raises(RunLocked):  # B
            with run_lock(tmp_path):
                pass
        assert json.loads(turns[1])["pid"] == os.getpid()
        assert (tmp_path / LOCK).read_text() == turns[1]  # A's lock, left as it was
    assert not (tmp_path / LOCK).exists()  # A released it


def test_a_signal_right_after_the_lock_is_linked_leaves_no_lock(tmp_path, monkeypatch):
    from mixupexp.records import lock

    real = os.link

    def link_then_signal(src, dst):
        real(src, dst)
        raise KeyboardInterrupt  # SIGINT, or SIGTERM as handled by records/interrupt.py

    monkeypatch.setattr(lock.os, "link", link_then_signal)
    with pytest.raises(KeyboardInterrupt):
        with run_lock(tmp_path):
            pass
    monkeypatch.undo()
    assert not (tmp_path / LOCK).exists() and not list(tmp_path.glob(".run.lock.*"))


def test_a_checkpoint_left_beside_a_finished_run_is_removed_by_the_rerun(tmp_path):
    """A kill between the finished run's result.json and the removal of its checkpoint."""
    cfg = compose_config(QUICK)
    train(cfg, tmp_path)
    before = snapshot(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"the last epoch's checkpoint")
    train(cfg, tmp_path)
    assert not (tmp_path / CHECKPOINT).exists() and snapshot(tmp_path) == before


def test_a_sweeps_temporary_files_left_by_a_kill_are_removed_when_it_starts_again(tmp_path):
    from omegaconf import OmegaConf

    from mixupexp.runs.callbacks import SummarizeSweep

    left = [tmp_path / ".sequential.json.abcd1234.tmp", tmp_path / ".summary.csv.x1y2z3w4.tmp",
            tmp_path / "confirm-trial3" / ".sequential.json.k9k9k9k9.tmp"]
    run_dir = tmp_path / "none_seed0_0123456789"
    kept = [run_dir / ".metrics.csv.abcd1234.tmp", tmp_path / "notes.tmp"]  # a run's own, and not a temporary file
    for path in left + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    SummarizeSweep().on_multirun_start(OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}}))
    assert not any(path.exists() for path in left) and all(path.exists() for path in kept)


def test_a_kill_during_a_write_leaves_a_temporary_file_that_the_rerun_removes(tmp_path, caplog):
    run_dir = tmp_path / "run"
    args = [*QUICK, "trainer.epochs=2", f"hydra.run.dir={run_dir}"]
    killed = inject("metrics.csv:1:during:SIGKILL", args, cwd=tmp_path)
    assert killed.returncode == -signal.SIGKILL
    (left,) = run_dir.glob(".metrics.csv.*.tmp")
    unrelated = [run_dir / ".notes.tmp", run_dir / "mine.tmp", run_dir / ".x.ab.tmp"]
    for path in unrelated:
        path.write_text("not a write of this program")
    with caplog.at_level(logging.INFO, logger="mixupexp"):
        train(compose_config(args[:-1]), run_dir)
    assert not left.exists() and all(path.exists() for path in unrelated)
    assert sorted(p.name for p in run_dir.glob(".*.tmp")) == [".notes.tmp", ".x.ab.tmp"]
    assert f"removed {left}, left by a write that was interrupted" in caplog.messages


@pytest.mark.slow
def test_multirun_may_come_after_the_overrides(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_cli([*QUICK, "augment=none,mixup", "--multirun", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    assert "usage" not in proc.stderr
    assert len(list(sweep.glob("*/result.json"))) == 2 and (sweep / "summary.csv").exists()
