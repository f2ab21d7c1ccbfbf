"""One training run, top to bottom: build (config -> data -> batches -> model -> optimizer -> step), restore a
checkpoint, train epoch by epoch (a checkpoint and metrics.csv after each), finish (result.json, model.pt).

`train(cfg, out_dir)` is what `python -m mixupexp.train` runs for each job.
"""

from __future__ import annotations

import logging
import platform
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf

from mixupexp.augment.loaders import DeviceBatches, MixupDataset
from mixupexp.augment.methods import Augmentation, SampleMixer, build_augmentation
from mixupexp.augment.mixup import mixup_pair
from mixupexp.augment.standard import random_crop_flip
from mixupexp.data.datasets import ImageData, check_batch_size, load_data
from mixupexp.models.networks import build_model, check_image_size
from mixupexp.records.checkpoint import (
    CHECKPOINT,
    MODEL,
    RESULT,
    CheckpointError,
    PriorRun,
    another_config,
    find_prior_run,
    load_checkpoint,
    save_checkpoint,
    set_aside,
)
from mixupexp.records.files import (
    atomic_torch_save,
    atomic_write_text,
    remove_stale_temp_files,
    write_csv,
    write_json,
)
from mixupexp.records.identity import identity, identity_hash, run_name
from mixupexp.records.lock import run_lock
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import RunStatus
from mixupexp.tracking.loggers import chosen as chosen_loggers
from mixupexp.tracking.loggers import open_loggers
from mixupexp.training.device import pin_threads, training_device, versions
from mixupexp.training.engine import (
    DivergedError,
    TrainStep,
    autocast_dtype,
    train_epoch,
)
from mixupexp.training.metrics import evaluate, fgsm_accuracy, fgsm_key
from mixupexp.training.optim import build_optimizer, build_schedule
from mixupexp.training.validate import validate

log = logging.getLogger("mixupexp")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CPU and every CUDA device


def choose_loader(name: str, data: ImageData, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        needed = data.train_images.numel() + data.test_images.numel()
        return "device" if needed < free // 4 else "dataloader"
    return "device"


def make_batches(cfg, data: ImageData, loader: str, device: torch.device, sample: SampleMixer | None):
    """Training batches of (images in [0, 1], soft labels), standard-augmented as `data.basic_augment` says and
    mixed per sample as a per-sample method (`sample`: the study's mixup) says; None for the other methods, which
    act later."""
    transform = random_crop_flip if cfg.data.basic_augment else None
    ratio, alpha, pair = (sample.ratio, sample.alpha, sample.pair) if sample else (0.0, cfg.augment.alpha, mixup_pair)
    if loader == "device":
        return DeviceBatches(
            data.train_images.to(device), data.train_labels.to(device), data.num_classes,
            cfg.trainer.batch_size, ratio, alpha, image_transform=transform, pair=pair,
        )
    dataset = MixupDataset(
        data.train_images, data.train_labels, data.num_classes, ratio, alpha, image_transform=transform, pair=pair
    )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=cfg.trainer.batch_size,
        shuffle=True,
        num_workers=cfg.trainer.num_workers,
        pin_memory=device.type == "cuda",
        # Workers are restarted each epoch (not persistent) so that their random streams derive from the
        # generator's state at the epoch's start, which a checkpoint restores: resumed runs stay exact.
        generator=torch.Generator().manual_seed(cfg.seed),
    )


def show_progress(setting: str) -> bool:
    return setting == "on" or (setting == "auto" and sys.stderr.isatty())


def train(cfg, out_dir: Path) -> dict:
    """Run one experiment described by the composed config `cfg`; write metrics.csv and result.json to out_dir.

    If out_dir already holds this config's run, a finished one is returned as it is and an unfinished one
    continues from its last checkpoint (unless trainer.resume=false). The directory is locked for the run
    (RunLocked if another live process trains there); Ctrl-C marks the run `interrupted` and is raised again.
    """
    validate(cfg)
    out_dir = Path(out_dir)
    with run_lock(out_dir), training_device(cfg.trainer.device) as device:
        try:
            return _train(cfg, out_dir, device)
        except KeyboardInterrupt:
            mark_interrupted(out_dir)
            raise


def mark_interrupted(out_dir: Path) -> None:
    """A run stopped by the user: result.json says `interrupted` (it resumes from its last checkpoint)."""
    path = out_dir / RESULT
    try:
        result = read_result(path)
    except UnreadableResult:
        return  # stopped before the run started writing: the file is not this run's
    if result is not None and result.get("status") == RunStatus.RUNNING:
        result.update(status=RunStatus.INTERRUPTED, finished_at=_now())
        try:
            write_json(path, result)
        except OSError as e:  # a full disk: the status stays `running`, which resumes all the same
            log.warning("%s", e)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Run:
    """Everything one run trains with, built from its config: the data on the device, the model, the optimizer
    and its schedule, the training batches, the augmentation and the compiled step."""

    cfg: DictConfig
    device: torch.device
    data: ImageData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: Optional[torch.optim.lr_scheduler.LRScheduler]
    amp_dtype: Optional[torch.dtype]
    loader: str
    batches: object
    augmentation: Augmentation
    step: TrainStep
    test: tuple[torch.Tensor, torch.Tensor]
    validation: Optional[tuple[torch.Tensor, torch.Tensor]]

    @property
    def loader_generator(self) -> Optional[torch.Generator]:
        return getattr(self.batches, "generator", None)


def build_run(cfg, device: torch.device) -> Run:
    """config -> data -> batches (mixed) -> model -> optimizer -> step, on `device`."""
    seed_everything(cfg.seed)
    data = load_data(cfg.data)
    check_batch_size(cfg.trainer.batch_size, len(data.train_labels))
    check_image_size(cfg.model, tuple(data.train_images.shape[2:]), f"the images of data={cfg.data.name}",
                     resizable=cfg.data.name in ("image_folder", "synthetic"))
    mean, std = data.channel_stats()
    model = build_model(cfg.model, data.num_classes, tuple(data.train_images.shape[1:]), mean, std).to(device)
    # channels_last: faster convolutions on the CPU (oneDNN, ~1.4x here) and on GPU tensor cores alike.
    model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device)
    schedule = build_schedule(cfg.optimizer, optimizer, cfg.trainer.epochs)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    augmentation = build_augmentation(cfg.augment)
    loader = choose_loader(cfg.trainer.loader, data, device)
    batches = make_batches(cfg, data, loader, device, augmentation.sample)
    # A replayed graph keeps what was decided at capture: manifold mixup's per-batch block and the lr of a
    # schedule would be frozen, so those runs stay eager.
    use_graph = (cfg.trainer.cuda_graph != "off" and device.type == "cuda" and loader == "device"
                 and augmentation.hidden is None and schedule is None)
    step = TrainStep(model, optimizer, amp_dtype, device, augmentation.hidden, graph=use_graph)
    test = (data.test_images.to(device), data.test_labels.to(device))
    validation = (data.val_images.to(device), data.val_labels.to(device)) if data.has_validation else None
    return Run(cfg, device, data, model, optimizer, schedule, amp_dtype, loader, batches, augmentation, step,
               test, validation)


def restore(run: Run, prior: PriorRun, out_dir: Path) -> tuple[list[dict], float, int]:
    """(metrics rows, training seconds, first epoch to train): from the prior run's checkpoint where there is a
    usable one, else a fresh start."""
    if prior.checkpoint is not None:
        try:
            state = load_checkpoint(prior.checkpoint, model=run.model, optimizer=run.optimizer,
                                    schedule=run.schedule, loader_generator=run.loader_generator)
        except CheckpointError as e:  # nothing was restored: this is still a fresh run
            log.warning("%s; set aside, moved to %s, starting afresh", e, set_aside(prior.checkpoint).name)
        else:
            log.info("resuming %s from the checkpoint of epoch %d", out_dir, state["epoch"])
            return state["rows"], state["train_seconds"], state["epoch"] + 1
    return [], 0.0, 1


def started_result(run: Run, config: dict, threads: int) -> dict:
    """result.json of a run in progress: how and with what it is made, before any result."""
    device = run.device
    return {
        "status": RunStatus.RUNNING,
        "started_at": _now(),
        "device": f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
                  else platform.processor() or "cpu",
        "loader": run.loader,
        "threads": threads,
        "precision": str(run.amp_dtype or torch.float32).removeprefix("torch."),
        "versions": versions(),
        "run_name": run_name(config),
        "identity_hash": identity_hash(identity(config)),
        "identity": identity(config),
        "config": config,
    }


def train_one_epoch(run: Run, epoch: int) -> tuple[dict, float]:
    """Train one epoch, step the schedule, and measure the test (and validation) split: (the epoch's metrics row,
    the seconds spent training)."""
    cfg = run.cfg
    epoch_start = time.perf_counter()
    train_loss = train_epoch(run.step, run.batches, run.augmentation.batch, run.device,
                             f"epoch {epoch}/{cfg.trainer.epochs}", progress=show_progress(cfg.trainer.progress))
    if run.schedule is not None:
        run.schedule.step()
    train_seconds = time.perf_counter() - epoch_start
    row = {"epoch": epoch, "train_loss": train_loss}
    if epoch % cfg.trainer.eval_every == 0 or epoch == cfg.trainer.epochs:
        test = evaluate(run.model, *run.test, cfg.trainer.eval_batch_size, run.device)
        row.update({"test_loss": test.loss, "test_acc": test.acc, "test_ece": test.ece})
    if run.validation is not None:
        val = evaluate(run.model, *run.validation, cfg.trainer.eval_batch_size, run.device)
        row.update({"val_loss": val.loss, "val_acc": val.acc})
    row["seconds"] = time.perf_counter() - epoch_start
    return row, train_seconds


def finish(run: Run, result: dict, rows: list[dict], train_seconds: float, started: float, out_dir: Path) -> dict:
    """The final measurements (FGSM), result.json with status ok, and the kept weights."""
    cfg = run.cfg
    robustness = fgsm_accuracy(run.model, *run.test, list(cfg.eval.fgsm_eps), cfg.trainer.eval_batch_size,
                               run.device)
    last = rows[-1]
    result.update({
        "status": RunStatus.OK,
        # The last epoch's accuracy is the result: picking the best epoch on the test set would overstate it.
        "test_acc": last["test_acc"],
        "test_loss": last["test_loss"],
        "test_ece": last["test_ece"],
        "test_images": len(run.test[1]),  # accuracies are multiples of 100 / test_images points
        # What a sweep selects its best configuration by (the test set stays untouched by the choice).
        **({"val_acc": last["val_acc"], "val_loss": last["val_loss"]} if run.validation is not None else {}),
        **{fgsm_key(eps): acc for eps, acc in robustness.items()},
        "train_loss": last["train_loss"],
        "epochs": cfg.trainer.epochs,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "finished_at": _now(),
    })
    if cfg.trainer.save_model:
        atomic_torch_save({k: v.detach().cpu() for k, v in run.model.state_dict().items()}, out_dir / MODEL)
    write_json(out_dir / RESULT, result)
    return result


def _train(cfg, out_dir: Path, device: torch.device) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    prior = find_prior_run(out_dir, config) if cfg.trainer.resume else PriorRun(None, None)
    if prior.finished:
        log.info("%s already holds this finished run (test_acc %.2f%%); not run again", out_dir, prior.result["test_acc"])
        measured = prior.result.get("config", {}).get("eval")
        if measured != config["eval"]:  # evaluation settings are not part of the run: say what it measured
            log.warning("%s was evaluated with eval=%s, not eval=%s as asked", out_dir, measured, config["eval"])
        recording = [name for name in chosen_loggers(cfg) if name != "csv"]
        if recording:  # nothing is trained, so nothing new reaches them
            log.warning("logger=%s records nothing for this run: it finished before and is not trained again "
                        "(trainer.resume=false retrains it; `tensorboard --logdir` etc. need a run that trains)",
                        ",".join(recording))
        kept = prior.result.get("config", {}).get("trainer", {}).get("keep_checkpoint", False)
        if prior.checkpoint is not None and not kept:  # a kill came between result.json and its removal
            prior.checkpoint.unlink(missing_ok=True)
            log.info("removed %s: the run had finished before it was deleted", prior.checkpoint)
        return prior.result
    for directory in (out_dir, out_dir / HYDRA_DIR):
        for stale in remove_stale_temp_files(directory):
            log.info("removed %s, left by a write that was interrupted", stale)
    started = time.perf_counter()
    threads = pin_threads(cfg.trainer.threads)
    run = build_run(cfg, device)
    rows, train_seconds, first_epoch = restore(run, prior, out_dir)
    if rows:  # what the checkpoint holds comes first: a kill may have come between its rename and metrics.csv's
        write_csv(out_dir / "metrics.csv", pd.DataFrame(rows))
    write_run_config(out_dir, cfg)
    data = run.data
    log.info(
        "training %s on %s (%d train / %d validation / %d test images, %d classes), augment=%s, device=%s, loader=%s",
        cfg.model.name, cfg.data.name, len(data.train_labels), len(data.val_labels) if run.validation is not None else 0,
        len(data.test_labels), data.num_classes, cfg.augment.name, device, run.loader,
    )
    result = started_result(run, config, threads)
    write_json(out_dir / RESULT, result)
    loggers = open_loggers(cfg, out_dir, config, earlier_rows=rows)
    for epoch in range(first_epoch, cfg.trainer.epochs + 1):
        row, seconds = train_one_epoch(run, epoch)
        train_seconds += seconds
        rows.append(row)
        save_checkpoint(out_dir / CHECKPOINT, model=run.model, optimizer=run.optimizer, schedule=run.schedule,
                        epoch=epoch, rows=rows, train_seconds=train_seconds, loader_generator=run.loader_generator)
        write_csv(out_dir / "metrics.csv", pd.DataFrame(rows))
        loggers.log_epoch(row)
        tested = (f"  test_loss {row['test_loss']:.4f}  test_acc {row['test_acc']:.2f}%  test_ece {row['test_ece']:.2f}%"
                  if "test_acc" in row else "")
        log.info("epoch %d/%d  train_loss %.4f%s%s  (%.1fs)", epoch, cfg.trainer.epochs, row["train_loss"], tested,
                 f"  val_acc {row['val_acc']:.2f}%" if run.validation is not None else "", row["seconds"])
    result = finish(run, result, rows, train_seconds, started, out_dir)
    loggers.finish(result)
    if not cfg.trainer.keep_checkpoint:
        (out_dir / CHECKPOINT).unlink(missing_ok=True)
    log.info("test accuracy %.2f%% after %d epochs; results in %s", result["test_acc"], cfg.trainer.epochs, out_dir)
    return result


HYDRA_DIR = ".hydra"


def write_run_config(out_dir: Path, cfg) -> None:
    """`.hydra/`: the config the run trains with (config.yaml) and, under Hydra, Hydra's settings and the
    overrides. Hydra writes none of it itself (hydra.output_subdir is null): it would do so before the run is
    known to be this directory's, so that a refused or clashing command would replace the config of the run it
    found there. Written once the run (re)starts, atomically."""
    from hydra.core.hydra_config import HydraConfig

    task = OmegaConf.masked_copy(cfg, [key for key in cfg if key != "hydra"]) if "hydra" in cfg else cfg
    atomic_write_text(out_dir / HYDRA_DIR / "config.yaml", OmegaConf.to_yaml(task))
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        atomic_write_text(out_dir / HYDRA_DIR / "hydra.yaml", OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg})))
        atomic_write_text(out_dir / HYDRA_DIR / "overrides.yaml", OmegaConf.to_yaml(hydra_cfg.overrides.task))


def failure_status(error: BaseException) -> RunStatus:
    if isinstance(error, DivergedError):
        return RunStatus.DIVERGED
    if isinstance(error, torch.OutOfMemoryError):
        return RunStatus.OUT_OF_MEMORY
    return RunStatus.FAILED


def record_failure(out_dir: Path, cfg, error: BaseException) -> RunStatus:
    """Mark the run in out_dir as failed in its result.json (keeping what it had); return the status.

    A result.json that is not this config's unfinished run is left as it is: a finished run (the error came
    before the run started, e.g. while its data were loaded), one that cannot be read, or another config's run.
    A failure to write the record (a full disk) is logged, not raised: the error that stopped the run is the one
    to report."""
    status = failure_status(error)
    path = out_dir / RESULT
    config = OmegaConf.to_container(cfg, resolve=True)
    try:
        result = read_result(path) or {"config": config}
    except UnreadableResult as e:
        log.warning("%s", e)
        return status
    if result.get("status") == RunStatus.OK or another_config(out_dir, config, result) is not None:
        return status
    result.update({
        "status": status,
        "error": f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else type(error).__name__,
        "finished_at": _now(),
    })
    try:
        write_json(path, result)
    except OSError as e:
        log.warning("the failure was not recorded in %s: %s", path, e)
    return status


