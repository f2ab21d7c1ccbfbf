"""Run identity, run directory names, locks, and summaries that count each (identity, seed) once."""

import json
import os
import subprocess
import sys

import pytest

from mixupexp.analysis.collect import fixed_settings, fixed_settings_text, load_runs
from mixupexp.analysis.table import summarize_runs
from mixupexp.records.identity import identity, identity_hash, run_name
from mixupexp.records.lock import LOCK, RunLocked, live_holder, run_lock
from mixupexp.runs.report import write_summary

from .conftest import TINY, compose_config
from .fabricate import write_run


def name_of(overrides):
    return run_name(compose_config([*TINY, *overrides]))


def test_methods_ignore_what_they_do_not_use():
    # augment=none ignores alpha and ratio; mixup ignores manifold mixup's blocks; preact ignores the FC width.
    assert name_of(["augment=none", "augment.alpha=0.1"]) == name_of(["augment=none", "augment.alpha=0.4"])
    assert name_of(["augment=none", "augment.ratio=0.2"]) == name_of(["augment=none", "augment.ratio=1.0"])
    assert name_of(["augment=mixup", "augment.mix_after_blocks=[1]"]) == name_of(["augment=mixup"])
    assert name_of(["model=preact_resnet18", "model.hidden=8"]) == name_of(["model=preact_resnet18"])
    # ...and what they use makes another run.
    assert name_of(["augment=mixup", "augment.alpha=0.1"]) != name_of(["augment=mixup", "augment.alpha=0.4"])
    assert name_of(["augment=none", "augment.label_smoothing=0.1"]) != name_of(["augment=none"])
    assert name_of(["seed=1"]) != name_of(["seed=2"])


def test_logging_resume_and_evaluation_settings_are_not_the_run():
    base = name_of([])
    for override in ("trainer.progress=on", "trainer.resume=false", "trainer.keep_checkpoint=true",
                     "eval.fgsm_eps=[]", "trainer.eval_batch_size=7", "trainer.cuda_graph=off",
                     "trainer.threads=1"):  # threads change only the order of float sums
        assert name_of([override]) == base, override
    for override in ("trainer.epochs=2", "data.num_train=300", "optimizer.lr=0.01", "trainer.batch_size=32"):
        assert name_of([override]) != base, override


def test_identity_is_readable_and_its_hash_stable():
    cfg = compose_config([*TINY, "augment=mixup", "seed=3"])
    ident = identity(cfg)
    assert ident["augment.name"] == "mixup" and ident["augment.alpha"] == 0.2 and "seed" not in ident
    assert "trainer.progress" not in ident and "augment.mix_after_blocks" not in ident
    # The same digest from a result.json's config (a plain dict), and for keys in another order.
    config = json.loads(json.dumps(dict(__import__("omegaconf").OmegaConf.to_container(cfg, resolve=True))))
    assert identity_hash(identity(config)) == identity_hash(ident)
    assert identity_hash(dict(reversed(list(ident.items())))) == identity_hash(ident)
    assert run_name(cfg) == f"mixup_seed3_{identity_hash(ident)}"


def test_a_key_left_at_null_changes_no_identity():
    with_null = {"augment": {"name": "none"}, "data": {"name": "synthetic", "train_subset": None}, "seed": 0}
    without = {"augment": {"name": "none"}, "data": {"name": "synthetic"}, "seed": 0}
    assert identity(with_null) == identity(without)


# ------------------------------------------------------------------------------------------------- summaries


def test_summaries_of_two_sweeps_count_a_shared_run_once(tmp_path):
    """An α sweep and the seed study share `mixup α=0.2`: summarised together its runs count once."""
    alpha_sweep, study = tmp_path / "alpha", tmp_path / "study"
    for seed, acc in enumerate([70.0, 71.0, 72.0]):
        write_run(alpha_sweep / f"a02_{seed}", "mixup", seed, acc, alpha=0.2)
        write_run(alpha_sweep / f"a04_{seed}", "mixup", seed, acc - 1, alpha=0.4)
        write_run(study / f"mixup_{seed}", "mixup", seed, acc, alpha=0.2)
        write_run(study / f"none_{seed}", "none", seed, acc - 2)
    runs = load_runs([alpha_sweep, study])
    assert len(runs) == 9 and len(runs.attrs["duplicates"]) == 3
    summary = write_summary([alpha_sweep, study], tmp_path / "out", plots=False)
    assert summary["augment"].tolist() == ["none", "mixup", "mixup"]
    assert summary["augment.alpha"].tolist()[1:] == [0.2, 0.4] and summary["n"].tolist() == [3, 3, 3]
    assert "3 duplicate runs left out" in (tmp_path / "out" / "summary.md").read_text()


def test_summarize_command_names_the_duplicates_in_one_line(tmp_path, capsys):
    from mixupexp.summarize import main

    for d in ("a", "b"):
        write_run(tmp_path / d / "run", "mixup", 0, 70.0)
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--no-plots"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "duplicate" in line]
    assert lines == [f"1 duplicate run left out: {tmp_path / 'b' / 'run'} (same run as {tmp_path / 'a' / 'run'})"]


def test_a_finished_copy_is_kept_over_a_failed_one(tmp_path):
    write_run(tmp_path / "a" / "run", "mixup", 0, 0.0, status="failed")
    write_run(tmp_path / "b" / "run", "mixup", 0, 70.0)
    runs = load_runs([tmp_path / "a", tmp_path / "b"])
    assert runs["status"].tolist() == ["ok"] and runs["run_dir"].tolist() == [str(tmp_path / "b" / "run")]


def test_settings_that_do_not_change_training_do_not_split_the_summary(tmp_path):
    """A sweep resumed with another trainer.progress (or resume, keep_checkpoint) is still one configuration."""
    for seed, (key, value) in enumerate([("progress", "off"), ("progress", "on"), ("resume", False)]):
        run = write_run(tmp_path / str(seed), "mixup", seed, 70.0 + seed)
        result = json.loads((run / "result.json").read_text())
        result["config"]["trainer"][key] = value
        (run / "result.json").write_text(json.dumps(result))
    summary = summarize_runs(load_runs([tmp_path]))[1]
    assert len(summary) == 1 and summary["n"].item() == 3


def test_interrupted_runs_are_counted_as_interrupted_not_failed(tmp_path):
    write_run(tmp_path / "0", "mixup", 0, 70.0)
    write_run(tmp_path / "1", "mixup", 1, 0.0, status="interrupted")
    write_run(tmp_path / "2", "mixup", 2, 0.0, status="diverged")
    summary = write_summary([tmp_path], tmp_path, plots=False)
    assert summary[["n", "n_failed", "n_interrupted"]].iloc[0].tolist() == [1, 1, 1]
    assert "| 1 (1 failed, 1 interrupted) |" in (tmp_path / "summary.md").read_text()


def test_summary_states_what_all_runs_shared(tmp_path):
    for seed in range(2):
        for augment in ("none", "mixup"):
            write_run(tmp_path / f"{augment}{seed}", augment, seed, 70.0, epochs=1,
                      extra={"device": "cpu", "precision": "float32", "versions": {"torch": "2.14.1"}})
    fixed = fixed_settings(load_runs([tmp_path]))
    assert fixed["trainer.epochs"] == 1 and fixed["device"] == "cpu" and fixed["versions"] == "torch 2.14.1"
    assert "augment" not in fixed and "seed" not in fixed
    write_summary([tmp_path], tmp_path, plots=False)
    text = (tmp_path / "summary.md").read_text()
    assert f"Fixed across all runs: {fixed_settings_text(fixed)}." in text and "trainer.epochs=1" in text
    assert json.loads((tmp_path / "summary_settings.json").read_text())["fixed"]["trainer.epochs"] == 1


# ------------------------------------------------------------------------------------------------- locks


def test_lock_is_exclusive_and_released(tmp_path):
    with run_lock(tmp_path):
        assert live_holder(tmp_path).pid == os.getpid()
        with pytest.raises(RunLocked) as info:
            with run_lock(tmp_path):
                pass
        assert info.value.same_invocation  # the same command: a duplicate job, not a clash
    assert not (tmp_path / LOCK).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {"pid": int(dead.stdout), "host": os.uname().nodename, "invocation": "x", "since": "earlier"}
    (tmp_path / LOCK).write_text(json.dumps(holder))
    assert live_holder(tmp_path) is None
    with run_lock(tmp_path):
        assert live_holder(tmp_path).pid == os.getpid()


def test_lock_of_another_live_process_is_a_clash(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"pid": other.pid, "host": os.uname().nodename, "invocation": "another", "since": "now"}
        (tmp_path / LOCK).write_text(json.dumps(holder))
        with pytest.raises(RunLocked, match=f"is being trained by pid {other.pid}") as info:
            with run_lock(tmp_path):
                pass
        assert not info.value.same_invocation
    finally:
        other.kill()
        other.wait()


def test_train_refuses_a_directory_another_process_trains(tmp_path):
    from mixupexp.training.run import train

    with run_lock(tmp_path):  # this process "trains" there
        with pytest.raises(RunLocked):
            train(compose_config(TINY), tmp_path)
    assert not (tmp_path / "result.json").exists()


def test_a_data_folder_is_one_run_however_its_path_is_spelled(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.setenv("HOME", str(tmp_path))
    spellings = [str(folder), f"{folder}/", "../data/cifar10", "../data/./cifar10", "'~/data/cifar10'"]
    names = {name_of(["data=image_folder", f"data.root={root}"]) for root in spellings}
    assert len(names) == 1
    assert name_of(["data=image_folder", f"data.root={tmp_path}"]) not in names  # another folder is another run


def test_a_data_folder_reached_through_a_symlink_is_the_same_run(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    names = {name_of(["data=image_folder", f"data.root={root}"])
             for root in (str(folder), str(tmp_path / "link" / "cifar10"), "link/cifar10")}
    assert len(names) == 1


def test_where_torchvision_keeps_cifar10_is_not_part_of_the_run():
    assert name_of(["data=cifar10", "data.root=/somewhere/cifar10"]) == name_of(["data=cifar10"])
    assert name_of(["data=svhn", "data.root=/elsewhere"]) == name_of(["data=svhn"])
