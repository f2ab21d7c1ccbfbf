"""`python -m mixupexp.train`: one training run (or, with --multirun, a sweep of them).

config -> data -> batches (mixed) -> model -> training -> metrics.csv / result.json in the run's directory.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import platform
import random
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import hydra
import numpy as np
import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from mixupexp.checkpoint import (CHECKPOINT, MODEL, RESULT, CheckpointError, PriorRun, find_prior_run,
                                 load_checkpoint, save_checkpoint, set_aside)
from mixupexp.augment import BatchMixer, HiddenMixer
from mixupexp.basic_augment import random_crop_flip
from mixupexp.config import ConfigError, validate
from mixupexp.preflight import check_command_line
from mixupexp.help import help_text, wants_help
from mixupexp.presets import without_preset_plus
from mixupexp.gpus import gpu_lease
from mixupexp.runlock import RunLocked, invocation_id, run_lock
from mixupexp.data import DataError, ImageData, check_batch_size, load_data
from mixupexp.engine import DivergedError, TrainStep, autocast_dtype, train_epoch
from mixupexp.evaluation import evaluate, fgsm_accuracy, fgsm_key
from mixupexp.files import atomic_torch_save, write_csv, write_json
from mixupexp.identity import identity, identity_hash, run_name
from mixupexp.loggers import open_loggers
from mixupexp.mixup import DeviceBatches, MixupDataset
from mixupexp.model import build_model

log = logging.getLogger("mixupexp")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # CPU and every CUDA device


def available_cores() -> int:
    """The cores this process may run on (a cluster job or a container may get fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def pin_threads(threads: int | None) -> int:
    """Set torch's CPU thread count for this run: launchers start workers with fewer threads (joblib's loky sets
    OMP_NUM_THREADS per worker), and a different count sums in a different order, so results would depend on
    the launcher. Returns the count set."""
    count = threads or available_cores()
    torch.set_num_threads(count)
    return count


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device=cuda but no CUDA GPU is available; use trainer.device=auto or cpu")
    return torch.device(name)


@contextmanager
def training_device(name: str) -> Iterator[torch.device]:
    """The device a job trains on, for the block: on a machine with several GPUs, one that no other live job of
    this machine holds (gpus.py), so that parallel workers spread over the GPUs instead of sharing cuda:0."""
    device = pick_device(name)
    count = torch.cuda.device_count() if device.type == "cuda" and device.index is None else 0
    if count < 2:
        yield device
        return
    with gpu_lease(count) as index:
        torch.cuda.set_device(index)
        yield torch.device("cuda", index)


def build_optimizer(cfg, params, device: torch.device) -> torch.optim.Optimizer:
    """The `optimizer` config group. On CUDA the fused kernels are used; they are also safe to capture."""
    on_cuda = device.type == "cuda"
    if cfg.name == "adam":
        extra = {"fused": True, "capturable": True} if on_cuda else {}
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, **extra)
    if cfg.name == "sgd":
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay
        )
    raise ConfigError(f"unknown optimizer {cfg.name}")


def build_schedule(cfg, optimizer: torch.optim.Optimizer, epochs: int):
    """The learning-rate schedule of the `optimizer` group, stepped once per epoch; None for a constant lr."""
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


def choose_loader(name: str, data: ImageData, device: torch.device) -> str:
    if name != "auto":
        return name
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        needed = data.train_images.numel() + data.test_images.numel()
        return "device" if needed < free // 4 else "dataloader"
    return "device"


def make_batches(cfg, data: ImageData, loader: str, device: torch.device):
    """Training batches of (images in [0, 1], soft labels), standard-augmented as `data.basic_augment` says and
    mixed by the study's per-sample mixup when `augment=mixup` (the batch-level methods come after, on the device)."""
    ratio = cfg.augment.ratio if cfg.augment.name == "mixup" else 0.0
    transform = random_crop_flip if cfg.data.basic_augment else None
    if loader == "device":
        return DeviceBatches(
            data.train_images.to(device), data.train_labels.to(device), data.num_classes,
            cfg.trainer.batch_size, ratio, cfg.augment.alpha, image_transform=transform,
        )
    dataset = MixupDataset(
        data.train_images, data.train_labels, data.num_classes, ratio, cfg.augment.alpha, image_transform=transform
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


def versions() -> dict:
    # Read from the package metadata: importing torchvision loads torch._dynamo (about 0.3 s after torch, and
    # seconds where nothing else loads it, as in evaluate), and a run on generated data never needs it.
    return {"python": platform.python_version(), "torch": torch.__version__,
            "torchvision": importlib.metadata.version("torchvision")}


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
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return  # stopped before the run started writing
    if result.get("status") == "running":
        result.update(status="interrupted", finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        write_json(path, result)


def _train(cfg, out_dir: Path, device: torch.device) -> dict:
    config = OmegaConf.to_container(cfg, resolve=True)
    prior = find_prior_run(out_dir, config) if cfg.trainer.resume else PriorRun(None, None)
    if prior.finished:
        log.info("%s already holds this finished run (test_acc %.2f%%); not run again", out_dir, prior.result["test_acc"])
        measured = prior.result.get("config", {}).get("eval")
        if measured != config["eval"]:  # evaluation settings are not part of the run: say what it measured
            log.warning("%s was evaluated with eval=%s, not eval=%s as asked", out_dir, measured, config["eval"])
        return prior.result
    started = time.perf_counter()
    threads = pin_threads(cfg.trainer.threads)
    seed_everything(cfg.seed)
    data = load_data(cfg.data)
    check_batch_size(cfg.trainer.batch_size, data)
    mean, std = data.channel_stats()
    model = build_model(cfg.model, data.num_classes, tuple(data.train_images.shape[1:]), mean, std).to(device)
    # channels_last: faster convolutions on the CPU (oneDNN, ~1.4x here) and on GPU tensor cores alike.
    model = model.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), device)
    schedule = build_schedule(cfg.optimizer, optimizer, cfg.trainer.epochs)
    amp_dtype = autocast_dtype(cfg.trainer.precision, device)
    loader = choose_loader(cfg.trainer.loader, data, device)
    batches = make_batches(cfg, data, loader, device)
    loader_generator = getattr(batches, "generator", None)
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device)
    validation = (data.val_images.to(device), data.val_labels.to(device)) if data.has_validation else None
    batch_mixer = BatchMixer.from_config(cfg.augment)
    hidden_mixer = HiddenMixer.from_config(cfg.augment)
    # A replayed graph keeps what was decided at capture: manifold mixup's per-batch block and the lr of a
    # schedule would be frozen, so those runs stay eager.
    use_graph = (cfg.trainer.cuda_graph != "off" and device.type == "cuda" and loader == "device"
                 and hidden_mixer is None and schedule is None)
    step = TrainStep(model, optimizer, amp_dtype, device, hidden_mixer, graph=use_graph)

    rows: list[dict] = []
    train_seconds = 0.0
    first_epoch = 1
    if prior.checkpoint is not None:
        try:
            state = load_checkpoint(prior.checkpoint, model=model, optimizer=optimizer, schedule=schedule,
                                    loader_generator=loader_generator)
        except CheckpointError as e:  # nothing was restored: this is still a fresh run
            log.warning("%s; moved to %s, starting afresh", e, set_aside(prior.checkpoint).name)
        else:
            rows, train_seconds, first_epoch = state["rows"], state["train_seconds"], state["epoch"] + 1
            log.info("resuming %s from the checkpoint of epoch %d", out_dir, state["epoch"])
    log.info(
        "training %s on %s (%d train / %d validation / %d test images, %d classes), augment=%s, device=%s, loader=%s",
        cfg.model.name, cfg.data.name, len(data.train_labels), len(data.val_labels) if validation is not None else 0,
        len(data.test_labels), data.num_classes,
        cfg.augment.name, device, loader,
    )
    result = {
        "status": "running",
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": f"{device} ({torch.cuda.get_device_name(device)})" if device.type == "cuda"
                  else platform.processor() or "cpu",
        "loader": loader,
        "threads": threads,
        "precision": str(amp_dtype or torch.float32).removeprefix("torch."),
        "versions": versions(),
        "run_name": run_name(config),
        "identity_hash": identity_hash(identity(config)),
        "identity": identity(config),
        "config": config,
    }
    write_json(out_dir / RESULT, result)
    loggers = open_loggers(cfg, out_dir, config, earlier_rows=rows)
    for epoch in range(first_epoch, cfg.trainer.epochs + 1):
        epoch_start = time.perf_counter()
        train_loss = train_epoch(step, batches, batch_mixer, device, f"epoch {epoch}/{cfg.trainer.epochs}",
                                 progress=show_progress(cfg.trainer.progress))
        if schedule is not None:
            schedule.step()
        train_seconds += time.perf_counter() - epoch_start
        test = evaluate(model, test_images, test_labels, cfg.trainer.eval_batch_size, device)
        rows.append({"epoch": epoch, "train_loss": train_loss, "test_loss": test.loss, "test_acc": test.acc,
                     "test_ece": test.ece})
        if validation is not None:
            val = evaluate(model, *validation, cfg.trainer.eval_batch_size, device)
            rows[-1].update({"val_loss": val.loss, "val_acc": val.acc})
        rows[-1]["seconds"] = time.perf_counter() - epoch_start
        save_checkpoint(out_dir / CHECKPOINT, model=model, optimizer=optimizer, schedule=schedule, epoch=epoch,
                        rows=rows, train_seconds=train_seconds, loader_generator=loader_generator)
        write_csv(out_dir / "metrics.csv", pd.DataFrame(rows))
        loggers.log_epoch(rows[-1])
        log.info("epoch %d/%d  train_loss %.4f  test_loss %.4f  test_acc %.2f%%  test_ece %.2f%%%s  (%.1fs)",
                 epoch, cfg.trainer.epochs, train_loss, test.loss, test.acc, test.ece,
                 f"  val_acc {rows[-1]['val_acc']:.2f}%" if validation is not None else "", rows[-1]["seconds"])

    robustness = fgsm_accuracy(model, test_images, test_labels, list(cfg.eval.fgsm_eps),
                               cfg.trainer.eval_batch_size, device)
    result.update({
        "status": "ok",
        # The last epoch's accuracy is the result: picking the best epoch on the test set would overstate it.
        "test_acc": rows[-1]["test_acc"],
        "test_loss": rows[-1]["test_loss"],
        "test_ece": rows[-1]["test_ece"],
        # What a sweep selects its best configuration by (the test set stays untouched by the choice).
        **({"val_acc": rows[-1]["val_acc"], "val_loss": rows[-1]["val_loss"]} if validation is not None else {}),
        **{fgsm_key(eps): acc for eps, acc in robustness.items()},
        "train_loss": rows[-1]["train_loss"],
        "epochs": cfg.trainer.epochs,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - started,
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    if cfg.trainer.save_model:
        atomic_torch_save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out_dir / MODEL)
    write_json(out_dir / RESULT, result)
    loggers.finish(result)
    if not cfg.trainer.keep_checkpoint:
        (out_dir / CHECKPOINT).unlink(missing_ok=True)
    log.info("test accuracy %.2f%% after %d epochs; results in %s", result["test_acc"], cfg.trainer.epochs, out_dir)
    return result


def failure_status(error: BaseException) -> str:
    if isinstance(error, DivergedError):
        return "diverged"
    if isinstance(error, torch.OutOfMemoryError):
        return "out_of_memory"
    return "failed"


def record_failure(out_dir: Path, cfg, error: BaseException) -> str:
    """Mark the run in out_dir as failed in its result.json (keeping what it had); return the status."""
    status = failure_status(error)
    path = out_dir / RESULT
    try:
        result = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, json.JSONDecodeError):
        result = {}
    result.setdefault("config", OmegaConf.to_container(cfg, resolve=True))
    result.update({
        "status": status,
        "error": f"{type(error).__name__}: {error}".splitlines()[0],
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    write_json(path, result)
    return status


def _one_line(error: BaseException) -> str:
    return f"{error}".splitlines()[0] if str(error) else type(error).__name__


@hydra.main(version_base="1.3", config_path="pkg://mixupexp.conf", config_name="config")
def run_job(cfg: DictConfig) -> str:
    """One Hydra job; returns how it ended: `ok` (trained, resumed or found finished), `duplicate` (another job
    of this command is training the same run), `clash`, `refused`, or the failure status. In a multirun a failed
    job is recorded in its result.json and the sweep goes on; the end of the sweep accounts for every job and
    exits non-zero if any did not finish."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    try:
        train(cfg, out_dir)
        return "ok"
    except RunLocked as e:
        if e.same_invocation:  # a job of this sweep that repeats another's run: that job trains it
            log.info("%s: the same run as another job of this sweep, which trains it", out_dir)
            return "duplicate"
        message = f"{e}; run the command again once it has finished"
        if not in_sweep:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)
        log.error("%s", message)
        return "clash"
    except ConfigError as e:  # bad input, or a directory holding another config's run: never overwrite it
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        if not in_sweep:
            sys.exit(2)
        return "refused"
    except Exception as e:
        status = record_failure(out_dir, cfg, e)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if in_sweep:  # each job's log says why it stopped; the sweep's last line lists them all
            log.error("run %s: %s", status, _one_line(e))
            return status
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2 if isinstance(e, DataError) else 1)


def main() -> None:
    """`python -m mixupexp.train`: check the command line (every job, and the data once), then hand it to Hydra.

    A sweep's default directory holds the time it started; it is fixed on the command line Hydra sees, so that
    the command printed on Ctrl-C runs the same jobs into the same directories."""
    sys.argv[1:] = without_preset_plus(sys.argv[1:])
    if wants_help(sys.argv[1:]):
        print(help_text([arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")]))
        return
    plan = check_command_line(sys.argv[1:])
    invocation_id()
    if plan is not None:
        sys.argv += plan.pinned
        if plan.multirun and len(plan.distinct) < len(plan.jobs):
            repeats = len(plan.jobs) - len(plan.distinct)
            print(f"{plan.counts()}: the other {repeats} repeat{'s' * (repeats == 1)} a run of this sweep (same "
                  f"identity and seed) and {'is' if repeats == 1 else 'are'} not trained again", file=sys.stderr)
    try:
        run_job()
    except KeyboardInterrupt:
        resume = plan.resume_command() if plan is not None else "the same command"
        print(f"interrupted; resume with: {resume}", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    # Run the copy imported by name, not this __main__ module: launchers such as submitit pickle the job
    # function, and a function of __main__ would be pickled by value, with every module it references.
    from mixupexp.train import main as imported_main

    imported_main()
