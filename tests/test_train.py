import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import mixupexp.training.run as train_module
from mixupexp.config.options import registered
from mixupexp.data.datasets import DataError
from mixupexp.training.device import available_cores
from mixupexp.training.run import train

from .conftest import REPO, TINY, compose_config, run_cli


def test_one_run_writes_metrics_and_result(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=2", "augment=mixup"])
    result = train(cfg, tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "train_loss", "test_loss", "test_acc", "test_ece", "seconds"]
    assert metrics["epoch"].tolist() == [1, 2]
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["status"] == "ok" and saved["test_acc"] == metrics["test_acc"].iloc[-1]
    assert saved["config"]["augment"]["name"] == "mixup" and saved["versions"]["torch"]
    assert result["test_acc"] == saved["test_acc"]


@pytest.mark.parametrize("augment", ["none", "mixup"])
def test_short_synthetic_run_learns(tmp_path, augment):
    """Synthetic data (1 000 CIFAR-sized images) and a narrower CNN, 3 epochs: far above the 10 % of chance."""
    cfg = compose_config(["data=synthetic", "data.num_train=1000", "data.num_test=250", "model.widths=[16,32,64,64]",
                          "model.hidden=64", "trainer.epochs=3", "trainer.batch_size=64", "trainer.progress=off",
                          "eval.fgsm_eps=[]", f"augment={augment}"])
    result = train(cfg, tmp_path)
    assert result["test_acc"] > 40.0


def test_same_seed_gives_identical_metrics_on_cpu(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=2", "augment=mixup", "seed=3"])
    train(cfg, tmp_path / "a")
    train(cfg, tmp_path / "b")
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv").drop(columns="seconds") for d in "ab")
    pd.testing.assert_frame_equal(a, b)


def test_eval_every_measures_the_test_split_less_often_and_trains_the_same_run(tmp_path):
    from mixupexp.records.identity import identity

    every = compose_config([*TINY, "trainer.epochs=3", "augment=mixup", "eval.fgsm_eps=[]"])
    sparse = compose_config([*TINY, "trainer.epochs=3", "augment=mixup", "eval.fgsm_eps=[]", "trainer.eval_every=2"])
    assert identity(every) == identity(sparse)
    train(every, tmp_path / "every")
    result = train(sparse, tmp_path / "sparse")
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("every", "sparse"))
    assert b["test_acc"].notna().tolist() == [False, True, True]  # epoch 2, and the last
    assert a["train_loss"].tolist() == b["train_loss"].tolist()  # evaluating does not change training
    for column in ("test_loss", "test_acc", "test_ece"):
        assert a[column].iloc[1:].tolist() == b[column].iloc[1:].tolist()
    assert result["test_acc"] == a["test_acc"].iloc[-1]


def test_eval_every_must_be_positive():
    from mixupexp.config.schema import ConfigError
    from mixupexp.training.validate import validate

    with pytest.raises(ConfigError, match="trainer.eval_every=0 must be > 0"):
        validate(compose_config([*TINY, "trainer.eval_every=0"]))


def test_dataloader_path_trains_too(tmp_path):
    cfg = compose_config([*TINY, "augment=mixup", "trainer.loader=dataloader", "trainer.num_workers=1"])
    result = train(cfg, tmp_path)
    assert result["status"] == "ok" and result["loader"] == "dataloader"


def test_cli_single_run(tmp_path):
    run_dir = tmp_path / "run"
    run_cli([*TINY, "augment=mixup", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert (run_dir / "metrics.csv").exists() and json.loads((run_dir / "result.json").read_text())["status"] == "ok"


@pytest.mark.slow
def test_cli_multirun_writes_summary_and_summarize_reproduces_it(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(
        ["--multirun", *TINY, "augment=mixup", "augment.alpha=0.1,0.4", "seed=0,1", f"hydra.sweep.dir={sweep}"],
        cwd=tmp_path,
    )
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 2 and summary["n"].tolist() == [2, 2]
    assert summary["augment.alpha"].tolist() == [0.1, 0.4]
    assert {"acc_mean", "acc_std", "acc_min", "acc_max", "test_loss_mean"} <= set(summary.columns)
    runs = pd.read_csv(sweep / "runs.csv")
    assert len(runs) == 4 and (runs["status"] == "ok").all()

    out = tmp_path / "again"
    out.mkdir()
    proc = run_cli([str(sweep), "--out", str(out)], cwd=tmp_path, module="mixupexp.summarize")
    assert "acc_mean" in proc.stdout
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), summary)
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), runs)


def test_cli_bad_value_is_one_line_and_nonzero(tmp_path):
    proc = run_cli([*TINY, "augment=mixup", "augment.alpha=-1", f"hydra.run.dir={tmp_path / 'r'}"], cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "error: augment.alpha=-1.0 must be > 0 for augment=mixup"
    assert not (tmp_path / "r" / "metrics.csv").exists()


@pytest.mark.slow
def test_summarize_without_runs_fails_clearly(tmp_path):
    proc = run_cli([str(tmp_path)], cwd=tmp_path, module="mixupexp.summarize", check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: no runs")


METHODS = list(registered("augment"))  # every method there is, from the registry


@pytest.mark.parametrize("loader", ["device", "dataloader"])
@pytest.mark.parametrize("augment", METHODS)
def test_every_method_trains_on_both_loaders_with_smoothing_and_crop_flip(tmp_path, augment, loader):
    cfg = compose_config([*TINY, f"augment={augment}", f"trainer.loader={loader}", "augment.label_smoothing=0.1",
                          "data.basic_augment=true"])
    result = train(cfg, tmp_path)
    assert result["status"] == "ok" and result["loader"] == loader and result["train_loss"] > 0


@pytest.mark.parametrize("schedule,expected", [
    ("step", [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]),
    ("cosine", [0.1, 0.0933013, 0.075, 0.05, 0.025, 0.0066987]),  # 0.1 * (1 + cos(pi * epoch / 6)) / 2
    ("none", [0.1] * 6),
])
def test_lr_schedule_per_epoch(schedule, expected):
    import torch

    from mixupexp.training.optim import build_optimizer, build_schedule

    cfg = compose_config(["optimizer=sgd", f"optimizer.schedule={schedule}", "optimizer.milestones=[2,4]"])
    optimizer = build_optimizer(cfg.optimizer, [torch.zeros(1, requires_grad=True)], torch.device("cpu"))
    schedule = build_schedule(cfg.optimizer, optimizer, epochs=6)
    lrs = []
    for _ in range(6):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if schedule is not None:
            schedule.step()
    assert lrs == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_cli_sweep_over_all_methods_has_one_summary_row_per_method(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["--multirun", *TINY, f"augment={','.join(METHODS)}", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["augment"].tolist()[0] == "none" and sorted(summary["augment"]) == sorted(METHODS)
    assert summary["n"].tolist() == [1] * len(METHODS) and (summary["n_failed"] == 0).all()
    assert summary["augment.alpha"].isna().tolist() == [True, False, False, False, False]
def test_run_records_calibration_and_fgsm(tmp_path):
    cfg = compose_config([*TINY, "trainer.epochs=2", "eval.fgsm_eps=[0,2,8]"])
    result = train(cfg, tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["test_ece"].between(0, 100).all() and result["test_ece"] == metrics["test_ece"].iloc[-1]
    assert result["fgsm_acc_0"] == result["test_acc"]
    assert result["fgsm_acc_2"] >= result["fgsm_acc_8"]
    assert json.loads((tmp_path / "result.json").read_text())["fgsm_acc_8"] == result["fgsm_acc_8"]


def test_validation_split_is_measured_every_epoch(tmp_path):
    result = train(compose_config([*TINY, "trainer.epochs=2", "data.val_size=64", "eval.fgsm_eps=[]"]), tmp_path)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns) == ["epoch", "train_loss", "test_loss", "test_acc", "test_ece", "val_loss",
                                     "val_acc", "seconds"]
    assert metrics["val_acc"].between(0, 100).all() and (metrics["val_loss"] > 0).all()
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["val_acc"] == metrics["val_acc"].iloc[-1] == result["val_acc"]
    assert saved["val_loss"] == metrics["val_loss"].iloc[-1] and saved["config"]["data"]["val_size"] == 64


def test_fgsm_can_be_turned_off(tmp_path):
    result = train(compose_config([*TINY, "eval.fgsm_eps=[]"]), tmp_path)
    assert result["status"] == "ok" and not any(k.startswith("fgsm_acc") for k in result)


def test_sweep_end_writes_comparison_report_and_plots(tmp_path, capsys):
    """What the multirun callback leaves after `augment=none,mixup seed=0,1` (runs trained in-process)."""
    from omegaconf import OmegaConf

    from mixupexp.runs.callbacks import SummarizeSweep

    sweep = tmp_path / "sweep"
    for job, (augment, seed) in enumerate([("none", 0), ("none", 1), ("mixup", 0), ("mixup", 1)]):
        train(compose_config([*TINY, f"augment={augment}", f"seed={seed}", "eval.fgsm_eps=[2]"]), sweep / str(job))
    SummarizeSweep().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep)}}}))
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["augment"].tolist() == ["none", "mixup"] and summary["n"].tolist() == [2, 2]
    # Paired by seed; after one tiny epoch both arms may still predict alike, a difference of 0 at every seed.
    assert summary["delta_acc_test"].iloc[1] in ("paired t-test", "none (every seed gave the same difference)")
    assert {"acc_ci95_low", "nll_mean", "ece_mean", "fgsm_acc_2_mean"} <= set(summary.columns)
    assert "## Verdicts" in (sweep / "summary.md").read_text()
    for name in ("forest.png", "accuracy.png"):
        assert (sweep / name).stat().st_size > 0
    # One epoch: no learning curves; one α: no α axis.
    assert not (sweep / "learning_curves.png").exists() and not (sweep / "accuracy_vs_alpha.png").exists()
    printed = capsys.readouterr().out
    assert "augment=mixup" in printed and ("p (Holm)" in printed or "not testable" in printed)


@pytest.mark.slow
@pytest.mark.skipif(available_cores() < 2, reason="needs 2 cores to start runs with different thread counts")
def test_cpu_runs_are_identical_whatever_threads_the_launcher_gave_them(tmp_path):
    # joblib's workers start with OMP_NUM_THREADS lowered; a run pins its own count (trainer.threads, null =
    # every core), so the same config and seed give the same numbers under every launcher.
    for threads in ("1", "2"):
        run_cli([*TINY, "trainer.epochs=2", "augment=mixup", "eval.fgsm_eps=[]", f"hydra.run.dir={tmp_path / threads}"],
                cwd=tmp_path, env={"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    one, two = (pd.read_csv(tmp_path / t / "metrics.csv").drop(columns="seconds") for t in ("1", "2"))
    pd.testing.assert_frame_equal(one, two, check_exact=True)
    assert json.loads((tmp_path / "1" / "result.json").read_text())["threads"] == available_cores()


def test_train_applies_the_lr_schedule_each_epoch(tmp_path, monkeypatch):
    used = []
    real_epoch = train_module.train_epoch

    def recording_epoch(step, *args, **kwargs):
        used.append(step.optimizer.param_groups[0]["lr"])
        return real_epoch(step, *args, **kwargs)

    monkeypatch.setattr(train_module, "train_epoch", recording_epoch)
    cfg = compose_config([*TINY, "trainer.epochs=3", "optimizer=sgd", "optimizer.lr=0.08", "optimizer.schedule=step",
                          "optimizer.milestones=[1,2]", "optimizer.gamma=0.5", "eval.fgsm_eps=[]"])
    train(cfg, tmp_path)
    assert used == pytest.approx([0.08, 0.04, 0.02])


def test_a_batch_as_large_as_the_training_set_is_refused_before_anything_is_written(tmp_path):
    cfg = compose_config([*TINY, "trainer.batch_size=256"])  # TINY has 256 training images
    with pytest.raises(DataError) as info:
        train(cfg, tmp_path)
    assert str(info.value) == ("trainer.batch_size=256 is not smaller than the training set (256 images), so an "
                               "epoch would be a single step; use a batch size below 256")
    assert list(tmp_path.iterdir()) == []


def test_cli_train_subset_larger_than_the_data_gets_one_line(tmp_path):
    proc = run_cli([*TINY, "data.train_subset=300", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: data.train_subset=300 is larger than the training set of synthetic (256 images); use at most 256, "
        "or null for all"]
    assert not (tmp_path / "run").exists()  # refused before Hydra made the run's directory


def test_a_sweep_whose_subset_is_too_large_is_refused_before_any_directory(tmp_path):
    proc = run_cli(["--multirun", *TINY, "augment=none,mixup", "data.val_size=100", "data.train_subset=200",
                    f"hydra.sweep.dir={tmp_path / 'sweep'}"], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and not (tmp_path / "sweep").exists()
    assert proc.stderr.strip().splitlines() == [
        "error: data.train_subset=200 is larger than the training set of synthetic after the 100 validation images "
        "(156 images); use at most 156, or null for all"]


def test_run_above_a_clone_named_mixupexp_is_one_line_not_an_import_error(tmp_path):
    # A clone's own folders (data/ holds the downloaded images) shadow the package's from the folder above it: the
    # current folder comes first on Python's path and an editable install's finder is asked only after it. The
    # check is this checkout's package_check, loaded by its path, so no other install decides the outcome.
    (tmp_path / "mixupexp" / "data" / "cifar10").mkdir(parents=True)
    (tmp_path / "mixupexp" / "conf").mkdir()
    check = REPO / "mixupexp" / "package_check.py"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; spec = u.spec_from_file_location('check', "
         f"{str(check)!r}); module = u.module_from_spec(spec); spec.loader.exec_module(module); "
         "module.refuse_shadowed_package()"], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: Python takes the folder {tmp_path / 'mixupexp'} for the mixupexp package, since the command "
        "runs in the folder above it; run it from inside that folder (cd mixupexp) or from any other"]


@pytest.mark.parametrize("command", ["mixupexp.train", "mixupexp.cache"])
def test_the_commands_check_the_package_before_they_import_a_stage(tmp_path, command):
    # The commands reach the check before any import that a shadowing folder would break.
    source = (REPO / Path(*command.split("."))).with_suffix(".py").read_text()
    lines = source.splitlines()
    first_stage = next(i for i, line in enumerate(lines)
                       if line.startswith(("from mixupexp", "import mixupexp")) and "package_check" not in line)
    assert any(line.startswith("refuse_shadowed_package()") for line in lines[:first_stage])
    # And with the package found (this checkout first on the path), the same folder changes nothing.
    (tmp_path / "mixupexp" / "data").mkdir(parents=True)
    assert run_cli(["--help"], cwd=tmp_path, module=command, check=False).returncode == 0
