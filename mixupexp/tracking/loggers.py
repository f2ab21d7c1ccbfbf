"""Experiment trackers chosen with `logger=`: TensorBoard, MLflow, Weights & Biases (besides the run's own files).

A run opens its loggers once, hands them one row of metrics per epoch and its result at the end: nothing here runs
inside the training loop, and nothing changes what a run computes. Each tracker's package is imported only when
its logger is chosen; a missing one is reported before any job starts (`check_packages`).

Every tracker gets the same record of a run: its parameters (the flattened config, without the keys its options
ignore and without the logger settings), the metrics of each epoch, and the final metrics of result.json.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import time
import weakref
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from mixupexp.config.options import ignored_keys
from mixupexp.config.schema import ConfigError
from mixupexp.records.files import atomic_write_text
from mixupexp.records.status import RunStatus

log = logging.getLogger("mixupexp")

EXTRA = "pip install 'mixupexp[loggers]'"
# logger name -> the modules it needs (the local MLflow store is SQLite, which needs SQLAlchemy and Alembic)
PACKAGES = {
    "tensorboard": ("tensorboard",),
    "mlflow": ("mlflow", "sqlalchemy", "alembic"),
    "wandb": ("wandb",),
}
FINAL_METRICS = ("test_acc", "test_loss", "test_ece", "train_loss", "train_seconds")
MLFLOW_PARENT_FILE = "mlflow_parent_run.txt"


def chosen(cfg) -> list[str]:
    """The loggers selected in cfg.logger (an unselected one is null)."""
    section = cfg.get("logger") or {}
    return [name for name in ("csv", "tensorboard", "mlflow", "wandb") if section.get(name) is not None]


def check_packages(cfg) -> None:
    """ConfigError naming the extra to install if a chosen logger's package is missing."""
    for name in chosen(cfg):
        missing = [module for module in PACKAGES.get(name, ()) if importlib.util.find_spec(module) is None]
        if missing:
            raise ConfigError(f"logger={name} needs the package {', '.join(missing)}: {EXTRA}")


def run_parameters(config: dict) -> dict[str, Any]:
    """The run's parameters as flat dotted keys: the config without the logger settings and the keys that its
    chosen options ignore (augment=none's alpha, ...). Lists become strings, as the trackers want scalars."""
    flat = pd.json_normalize({k: v for k, v in config.items() if k not in ("logger", "hydra")}, sep=".").iloc[0]
    flat = flat.to_dict()
    skip = ignored_keys(flat)
    return {key: _scalar(value) for key, value in flat.items() if key not in skip}


def final_metrics(result: dict) -> dict[str, float]:
    """The numbers of result.json that describe the finished run: accuracy, NLL, ECE, FGSM accuracies, times."""
    keys = [k for k in result if k in FINAL_METRICS or k.startswith("fgsm_acc_")]
    return {k: float(result[k]) for k in keys if isinstance(result[k], (int, float)) and math.isfinite(result[k])}


def _scalar(value: Any) -> Any:
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return str(list(value))
    return value


def _sweep_dir() -> Optional[Path]:
    """The sweep directory when this job is part of a multirun, else None."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra_cfg = HydraConfig.get()
    return Path(hydra_cfg.sweep.dir).resolve() if hydra_cfg.mode == RunMode.MULTIRUN else None


# ------------------------------------------------------------------------------------------------ TensorBoard


class TensorBoardLogger:
    """Scalars per epoch under `epoch/...`; at the end the hyperparameters with the final metrics (`final/...`), so
    that TensorBoard's HParams tab lists the runs of a sweep side by side (`tensorboard --logdir SWEEP_DIR`)."""

    def __init__(self, settings, out_dir: Path, params: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.params = params
        self.writer = SummaryWriter(log_dir=str(out_dir / settings.dir))

    def log_epoch(self, row: dict) -> None:
        for key, value in row.items():
            if key != "epoch":
                self.writer.add_scalar(f"epoch/{key}", value, global_step=row["epoch"])
        self.writer.flush()

    def finish(self, result: dict) -> None:
        from torch.utils.tensorboard.summary import hparams

        metrics = {f"final/{k}": v for k, v in final_metrics(result).items()}
        # Written into this run's own event file (SummaryWriter.add_hparams would open a sub-folder per call).
        experiment, session_start, session_end = hparams(self.params, metrics)
        for summary in (experiment, session_start, session_end):
            self.writer.file_writer.add_summary(summary)
        for key, value in metrics.items():
            self.writer.add_scalar(key, value, global_step=result.get("epochs", 0))
        self.close(RunStatus.OK)

    def close(self, status: str) -> None:
        self.writer.close()


# ------------------------------------------------------------------------------------------------ MLflow


def mlflow_client(settings):
    """An MlflowClient for the configured store and the id of the experiment; the default store is SQLite in
    ./mlruns (MLflow's file store is no longer maintained), its artefacts in ./mlruns/artifacts."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    artifact_location = None
    uri = settings.tracking_uri
    if uri is None:
        store = Path("mlruns").resolve()
        store.mkdir(parents=True, exist_ok=True)
        uri = f"sqlite:///{store / 'mlflow.db'}"
        artifact_location = (store / "artifacts").as_uri()
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is not None:
        return client, experiment.experiment_id
    try:
        return client, client.create_experiment(settings.experiment, artifact_location=artifact_location)
    except MlflowException:  # created by a job running beside this one
        return client, client.get_experiment_by_name(settings.experiment).experiment_id


def mlflow_parent_run(client, experiment_id: str, sweep_dir: Path, wait_s: float = 120.0) -> str:
    """The id of the sweep's parent run, created by the first job that asks; its id is kept in the sweep dir.

    Jobs of a parallel launcher ask at the same time: an exclusively created lock file decides which one creates
    the run, the others wait for its id.
    """
    id_file, lock = sweep_dir / MLFLOW_PARENT_FILE, sweep_dir / f".{MLFLOW_PARENT_FILE}.lock"
    if id_file.exists():
        return id_file.read_text().strip()
    sweep_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if id_file.exists():
                return id_file.read_text().strip()
            time.sleep(0.2)
        raise RuntimeError(f"no MLflow parent run id in {id_file} after {wait_s:.0f} s; delete {lock} and rerun")
    try:
        run = client.create_run(experiment_id, run_name=sweep_dir.name, tags={"mixupexp.sweep_dir": str(sweep_dir)})
        atomic_write_text(id_file, run.info.run_id + "\n")
    finally:
        os.close(fd)
    return run.info.run_id


class MlflowLogger:
    """One MLflow run per job: params, per-epoch metrics (step = epoch), final metrics; in a sweep, a child of
    the sweep's parent run."""

    def __init__(self, settings, out_dir: Path, params: dict):
        from mlflow.entities import Param

        self.client, experiment_id = mlflow_client(settings)
        sweep_dir = _sweep_dir()
        tags = {"mixupexp.run_dir": str(out_dir.resolve())}
        if sweep_dir is not None:
            tags["mlflow.parentRunId"] = mlflow_parent_run(self.client, experiment_id, sweep_dir)
        name = f"{sweep_dir.name}/{out_dir.name}" if sweep_dir is not None else out_dir.name
        self.run_id = self.client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def _log(self, values: dict, step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

    def log_epoch(self, row: dict) -> None:
        self._log({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    def finish(self, result: dict) -> None:
        self._log({f"final_{k}": v for k, v in final_metrics(result).items()}, step=result.get("epochs", 0))
        self.close(RunStatus.OK)

    def close(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status="FINISHED" if status == RunStatus.OK else "FAILED")


def log_sweep_summary(cfg, sweep_dir: Path) -> None:
    """End of a sweep: log its summary files (runs.csv, summary.csv, summary.md, plots) as artefacts of the
    sweep's parent MLflow run and close that run. Does nothing unless logger=mlflow is chosen."""
    if cfg.get("logger") is None or cfg.logger.get("mlflow") is None:
        return
    sweep_dir = Path(sweep_dir).resolve()
    client, experiment_id = mlflow_client(cfg.logger.mlflow)
    run_id = mlflow_parent_run(client, experiment_id, sweep_dir)
    for name in ("runs.csv", "summary.csv", "summary.md", *sorted(p.name for p in sweep_dir.glob("*.png"))):
        if (sweep_dir / name).is_file():
            client.log_artifact(run_id, str(sweep_dir / name))
    client.set_terminated(run_id, status="FINISHED")
    log.info("sweep summary logged to MLflow run %s", run_id)


# ------------------------------------------------------------------------------------------------ W&B


class WandbLogger:
    """A W&B run per job (offline by default, files in RUN_DIR/wandb); the sweep's directory name is its group."""

    def __init__(self, settings, out_dir: Path, params: dict, config: dict):
        import wandb

        sweep_dir = _sweep_dir()
        self.run = wandb.init(
            project=settings.project, entity=settings.entity, mode=settings.mode, dir=str(out_dir),
            name=f"{sweep_dir.name}/{out_dir.name}" if sweep_dir is not None else out_dir.name,
            group=sweep_dir.name if sweep_dir is not None else None,
            config={k: v for k, v in config.items() if k not in ("logger", "hydra")},
            reinit="create_new", settings=wandb.Settings(console="off", silent=True),
        )
        self.run.config.update({"params": params})

    def log_epoch(self, row: dict) -> None:
        self.run.log({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    def finish(self, result: dict) -> None:
        self.run.summary.update({f"final_{k}": v for k, v in final_metrics(result).items()})
        self.close(RunStatus.OK)

    def close(self, status: str) -> None:
        self.run.finish(exit_code=0 if status == RunStatus.OK else 1)


# ------------------------------------------------------------------------------------------------ together


def _close_all(backends: list, status: str) -> None:
    for backend in backends:
        try:
            backend.close(status)
        except Exception as e:  # a tracker that cannot close must not hide why the run stopped
            log.warning("could not close %s: %s", type(backend).__name__, e)


class RunLoggers:
    """The chosen loggers of one run. If the run stops before `finish` (an exception, a kill), the trackers'
    records are closed as failed when this object is collected or the interpreter exits."""

    def __init__(self, backends: list):
        self.backends = backends
        self._closer = weakref.finalize(self, _close_all, backends, RunStatus.FAILED)

    def log_epoch(self, row: dict) -> None:
        for backend in self.backends:
            backend.log_epoch(row)

    def finish(self, result: dict) -> None:
        self._closer.detach()
        for backend in self.backends:
            backend.finish(result)


def open_loggers(cfg, out_dir: Path, config: dict, earlier_rows: list[dict] = ()) -> RunLoggers:
    """Open the loggers chosen in cfg.logger for the run in out_dir (csv needs nothing: the run writes its files).

    A resumed run passes the rows of its earlier epochs: MLflow and W&B start a new record and get them again;
    TensorBoard appends to its folder, which holds them already.
    """
    check_packages(cfg)
    out_dir = Path(out_dir)
    params = run_parameters(config)
    backends = []
    names = chosen(cfg)
    if "tensorboard" in names:
        backends.append(TensorBoardLogger(cfg.logger.tensorboard, out_dir, params))
    if "mlflow" in names:
        backends.append(MlflowLogger(cfg.logger.mlflow, out_dir, params))
    if "wandb" in names:
        backends.append(WandbLogger(cfg.logger.wandb, out_dir, params, config))
    loggers = RunLoggers(backends)
    for row in earlier_rows:
        for backend in backends:
            if not isinstance(backend, TensorBoardLogger):
                backend.log_epoch(row)
    return loggers
