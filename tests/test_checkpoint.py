"""Checkpoints: only tensors and plain data, refused when they could run code, set aside when unreadable, and
written durably (fsync before the rename)."""

import json
import logging
import os
import random

import numpy as np
import pandas as pd
import pytest
import torch

from mixupexp.records import files
from mixupexp.records.checkpoint import (
    CHECKPOINT,
    CheckpointError,
    read_checkpoint,
    restore_rng_states,
    rng_states,
)
from mixupexp.training.run import train

from .conftest import TINY, compose_config, run_cli
from .test_reliability import Killed, interrupt_after_checkpoint


class Payload:
    """Unpickling this calls open(marker, "w"): a file appears if the checkpoint's code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def plant(path, marker):
    torch.save({"epoch": 1, "model": {}, "payload": Payload(marker)}, path)


def _draws():
    # Python's first Gaussian is the one cached in its state by the draw before the state was saved.
    return random.gauss(0, 1), random.random(), np.random.rand(), np.random.standard_normal(), torch.rand(()).item()


def test_rng_states_are_plain_data_and_restore_every_generator(tmp_path):
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a second Gaussian cached in Python's state
    np.random.standard_normal()  # and in NumPy's
    loader = torch.Generator().manual_seed(4)
    torch.save(rng_states(loader), tmp_path / "rng.pt")
    expected = (*_draws(), torch.rand((), generator=loader).item())
    states = torch.load(tmp_path / "rng.pt", weights_only=True)
    restore_rng_states(states, loader)
    assert (*_draws(), torch.rand((), generator=loader).item()) == expected


def test_a_checkpoint_that_could_run_code_is_refused_in_one_line(tmp_path):
    marker = tmp_path / "ran"
    plant(tmp_path / CHECKPOINT, marker)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / CHECKPOINT)
    message = str(info.value)
    assert message.startswith(f"{tmp_path / CHECKPOINT} is not a plain checkpoint (it refers to ")
    assert "could run code" in message and "\n" not in message
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "foreign"])
def test_an_unreadable_checkpoint_is_named_in_one_line(tmp_path, damage):
    path = tmp_path / CHECKPOINT
    torch.save({"weights": torch.zeros(1000)}, path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def _interrupted_run(cfg, run_dir, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_after_checkpoint(m, epoch=1)
        with pytest.raises(Killed):
            train(cfg, run_dir)


def _metrics(run_dir):
    return pd.read_csv(run_dir / "metrics.csv").drop(columns="seconds")


@pytest.mark.parametrize("damage", ["truncated", "code"])
def test_a_bad_checkpoint_is_set_aside_and_the_run_starts_afresh(tmp_path, monkeypatch, caplog, damage):
    cfg = compose_config([*TINY, "trainer.epochs=2", "augment=mixup"])
    run_dir, marker = tmp_path / "run", tmp_path / "ran"
    _interrupted_run(cfg, run_dir, monkeypatch)
    checkpoint = run_dir / CHECKPOINT
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    else:
        plant(checkpoint, marker)
    planted = checkpoint.read_bytes()
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        result = train(cfg, run_dir)
    assert not marker.exists()
    assert result["status"] == "ok"
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [aside] = run_dir.glob(f"{CHECKPOINT}.corrupt-*")
    assert warning.startswith(str(checkpoint)) and warning.endswith(f"moved to {aside.name}, starting afresh")
    assert aside.read_bytes() == planted  # kept for a look, not deleted
    train(cfg, tmp_path / "fresh")
    pd.testing.assert_frame_equal(_metrics(run_dir), _metrics(tmp_path / "fresh"))


@pytest.mark.slow
def test_cli_run_again_over_a_planted_checkpoint_runs_no_code(tmp_path):
    """The attack: a checkpoint.pt planted in an unfinished run's directory, then the same command again."""
    run_dir, marker = tmp_path / "run", tmp_path / "ran"
    args = [*TINY, "trainer.keep_checkpoint=true", f"hydra.run.dir={run_dir}"]
    run_cli(args, cwd=tmp_path)
    result = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**result, "status": "running"}))  # as if killed
    plant(run_dir / CHECKPOINT, marker)
    run_cli(args, cwd=tmp_path)
    assert not marker.exists()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "ok"
    assert "is not a plain checkpoint" in (run_dir / "train.log").read_text()
    assert len(list(run_dir.glob(f"{CHECKPOINT}.corrupt-*"))) == 1


@pytest.mark.parametrize("write", [
    lambda path: files.atomic_torch_save({"weights": torch.zeros(3)}, path),
    lambda path: files.write_json(path, {"status": "ok"}),
    lambda path: files.write_csv(path, pd.DataFrame({"a": [1]})),
], ids=["checkpoint", "json", "csv"])
def test_writes_are_flushed_to_disk_before_and_after_the_rename(tmp_path, monkeypatch, write):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.fstat(fd).st_ino))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("rename", os.stat(src).st_ino))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = tmp_path / "out"
    write(path)
    new_file, directory = path.stat().st_ino, tmp_path.stat().st_ino
    assert events == [("fsync", new_file), ("rename", new_file), ("fsync", directory)]
