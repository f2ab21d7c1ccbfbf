"""logger=tensorboard/mlflow/wandb: each tool's own reader finds the sweep's records; loggers change no result."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from mixupexp.config.schema import ConfigError
from mixupexp.tracking import loggers
from mixupexp.training.run import train
from tests.conftest import TINY, compose_config, run_cli
from tests.wandb_records import read_run

LOGGED = [*TINY, "trainer.epochs=2", "eval.fgsm_eps=[2]"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 2-run sweep (seeds 0 and 1) with all three trackers at once; cwd holds the default MLflow store."""
    cwd = tmp_path_factory.mktemp("loggers")
    run_cli(["--multirun", *LOGGED, "logger=[csv,tensorboard,mlflow,wandb]", "seed=0,1",
             "hydra.sweep.dir=sweep"], cwd=cwd)
    return cwd, cwd / "sweep"


def runs_by_seed(sweep_dir: Path) -> dict[int, Path]:
    """The sweep's run directories (named by what they train) by seed."""
    return {json.loads(p.read_text())["config"]["seed"]: p.parent for p in sweep_dir.glob("*/result.json")}


def metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv")


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


@pytest.mark.slow
def test_tensorboard_holds_epoch_scalars_and_hparams_with_final_metrics(sweep):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    _, sweep_dir = sweep
    for seed, run_dir in runs_by_seed(sweep_dir).items():
        events = EventAccumulator(str(run_dir / "tensorboard"))
        events.Reload()
        acc = events.Scalars("epoch/test_acc")
        assert [e.step for e in acc] == [1, 2]
        assert [e.value for e in acc] == pytest.approx(metrics(run_dir)["test_acc"].tolist())
        assert events.Scalars("final/test_acc")[-1].value == pytest.approx(result(run_dir)["test_acc"])
        assert events.Scalars("final/fgsm_acc_2")[-1].value == pytest.approx(result(run_dir)["fgsm_acc_2"])
        content = events.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
        hparams = start.session_start_info.hparams
        assert hparams["seed"].number_value == seed
        assert hparams["augment.name"].string_value == "none"
        assert "augment.alpha" not in hparams  # augment=none ignores it: not a parameter of this run
        experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
        assert "final/test_acc" in [m.name.tag for m in experiment.metric_infos]


@pytest.mark.slow
def test_mlflow_has_one_run_per_job_under_a_parent_with_the_summary(sweep, monkeypatch):
    import mlflow

    cwd, sweep_dir = sweep
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{cwd / 'mlruns' / 'mlflow.db'}")
    client = mlflow.MlflowClient()
    runs = mlflow.search_runs(experiment_names=["mixupexp"])
    parent = runs[runs["tags.mlflow.parentRunId"].isna()]
    children = runs[runs["tags.mlflow.parentRunId"].notna()].sort_values("params.seed")
    assert len(parent) == 1 and len(children) == 2
    assert set(children["tags.mlflow.parentRunId"]) == {parent.run_id.iloc[0]}
    assert (runs["status"] == "FINISHED").all()
    runs = runs_by_seed(sweep_dir)
    for (_, child), seed in zip(children.iterrows(), (0, 1)):
        run_dir = runs[seed]
        assert child["params.seed"] == str(seed) and child["tags.mlflow.runName"] == f"sweep/{run_dir.name}"
        assert child["params.data.name"] == "synthetic"
        history = client.get_metric_history(child.run_id, "test_acc")
        assert [(m.step, m.value) for m in history] == list(zip([1, 2], metrics(run_dir)["test_acc"]))
        assert child["metrics.final_test_acc"] == pytest.approx(result(run_dir)["test_acc"])
        assert child["metrics.final_fgsm_acc_2"] == pytest.approx(result(run_dir)["fgsm_acc_2"])
    artefacts = {a.path for a in client.list_artifacts(parent.run_id.iloc[0])}
    assert {"runs.csv", "summary.csv", "summary.md"} <= artefacts


@pytest.mark.slow
def test_wandb_offline_run_files_hold_config_history_and_summary(sweep):
    _, sweep_dir = sweep
    for seed, run_dir in runs_by_seed(sweep_dir).items():
        (path,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
        run = read_run(path)
        assert run["group"] == "sweep" and run["name"] == f"sweep/{run_dir.name}"
        assert run["config"]["seed"] == seed
        assert [step["test_acc"] for step in run["history"]] == pytest.approx(metrics(run_dir)["test_acc"].tolist())
        assert run["summary"]["final_test_acc"] == pytest.approx(result(run_dir)["test_acc"])


@pytest.mark.slow
def test_loggers_change_neither_the_results_nor_the_run_identity(sweep, tmp_path):
    logged_dir = runs_by_seed(sweep[1])[0]
    plain = train(compose_config([*LOGGED, "seed=0"]), tmp_path)
    logged = result(logged_dir)
    for key in ("test_acc", "test_loss", "test_ece", "fgsm_acc_2", "train_loss"):
        assert plain[key] == logged[key]
    columns = ["epoch", "train_loss", "test_loss", "test_acc", "test_ece"]
    pd.testing.assert_frame_equal(metrics(tmp_path)[columns], metrics(logged_dir)[columns])
    # The same run with other loggers is the same run: found finished, not refused as another config's.
    again = train(compose_config([*LOGGED, "seed=0", "logger=csv"]), logged_dir)
    assert again["finished_at"] == logged["finished_at"]


def test_a_missing_tracker_package_names_the_extra(monkeypatch):
    real = loggers.importlib.util.find_spec
    monkeypatch.setattr(loggers.importlib.util, "find_spec", lambda name: None if name == "wandb" else real(name))
    with pytest.raises(ConfigError, match=r"logger=wandb needs the package wandb: pip install 'mixupexp\[loggers\]'"):
        loggers.check_packages(compose_config(["logger=[tensorboard,wandb]"]))
    loggers.check_packages(compose_config(["logger=tensorboard"]))


def test_a_finished_run_says_that_its_loggers_record_nothing_new(tmp_path, caplog):
    pytest.importorskip("tensorboard")
    import logging

    train(compose_config([*TINY, "eval.fgsm_eps=[]"]), tmp_path / "run")
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        train(compose_config([*TINY, "eval.fgsm_eps=[]", "logger=[csv,tensorboard]"]), tmp_path / "run")
    assert any("logger=tensorboard records nothing for this run: it finished before" in r.getMessage()
               for r in caplog.records)
    assert not (tmp_path / "run" / "tensorboard").exists()
