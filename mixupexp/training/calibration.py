"""How long a run of a configuration takes on this machine, measured in seconds before any run has finished:
`python -m mixupexp.plan` prices a new study with it.

The run is built as training builds it (data, model, optimizer, batches, step, on the device it would use), a few
training steps are timed after a warm-up, and one evaluation of a slice of the test split; an epoch is then the
steps of an epoch at the median step time plus the evaluations an epoch makes, scaled from the slice. Start-up
(imports, loading the data) and the FGSM evaluation after training are not counted: the time from finished runs,
where a sweep has some, counts everything. Each measurement is cached in `data.cache_dir/calibration.json`, by
machine (host, CPU, device, threads) and configuration (the run identity), so a second plan of the same study
measures nothing.
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import torch

from mixupexp.records.files import write_json
from mixupexp.records.identity import identity, identity_hash, plain_config
from mixupexp.training.device import pin_threads, training_device
from mixupexp.training.engine import train_epoch
from mixupexp.training.profile import _sync, cpu_info, evaluation_seconds

CALIBRATION_FILE = "calibration.json"
WARMUP_STEPS = 2  # not timed: the first steps allocate, and on CUDA tune the kernels
TIMED_STEPS = 5
EVAL_IMAGES = 1000  # the slice of the test split whose evaluation is timed


@dataclass
class Calibration:
    step_seconds: float  # median seconds of one training step
    eval_seconds_per_image: float
    steps_per_epoch: int
    evaluated_per_epoch: float  # test images (every eval_every epochs) and validation images an epoch evaluates
    machine: str
    measured_at: str
    cached: bool = False

    @property
    def seconds_per_epoch(self) -> float:
        return self.steps_per_epoch * self.step_seconds + self.evaluated_per_epoch * self.eval_seconds_per_image

    def text(self) -> str:
        when = f"cached, measured {self.measured_at}" if self.cached else "measured now"
        return (f"calibrated on this machine ({when}): {self.step_seconds:.3f} s per step x {self.steps_per_epoch} "
                f"steps, evaluation {1000 * self.eval_seconds_per_image:.2f} ms per image; start-up not counted")


def machine(threads: int, device: torch.device) -> str:
    """What the speed depends on besides the configuration: the host, its CPU, the device and the threads."""
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return f"{platform.node()} | {cpu_info()['model_name'] or platform.processor()} | {gpu} | {threads} threads"


def _endless(batches):
    while True:
        yield from batches


def measure(cfg) -> Calibration:
    """Time TIMED_STEPS training steps and one evaluation of EVAL_IMAGES test images of the run `cfg`."""
    from mixupexp.training.run import build_run  # the training stack, only where a calibration is needed

    threads = pin_threads(cfg.trainer.threads)
    with training_device(cfg.trainer.device) as device:
        run = build_run(cfg, device)
        stream = _endless(run.batches)  # one pass across the steps: a new pass would reshuffle, or start workers
        batches = lambda count: itertools.islice(stream, count)
        train_epoch(run.step, batches(WARMUP_STEPS), run.augmentation.batch, device, "calibration")
        times = []
        for _ in range(TIMED_STEPS):
            _sync(device)
            start = time.perf_counter()
            train_epoch(run.step, batches(1), run.augmentation.batch, device, "calibration")
            _sync(device)
            times.append(time.perf_counter() - start)
        images, labels = run.test
        sliced = min(EVAL_IMAGES, len(labels))
        seconds = evaluation_seconds(run.model, images[:sliced], labels[:sliced], cfg.trainer.eval_batch_size, device,
                                     repeats=1)
        validation = len(run.validation[1]) if run.validation is not None else 0
        return Calibration(statistics.median(times), seconds / sliced, len(run.batches),
                           len(labels) / cfg.trainer.eval_every + validation, machine(threads, device),
                           datetime.now(timezone.utc).isoformat(timespec="seconds"))


def calibration(cfg) -> Calibration:
    """The cached calibration of `cfg` on this machine, measured (and cached) where there is none."""
    path = Path(str(cfg.data.cache_dir)).expanduser() / CALIBRATION_FILE
    with training_device(cfg.trainer.device) as device:
        here = machine(pin_threads(cfg.trainer.threads), device)
    key = f"{here} | {identity_hash(identity(plain_config(cfg)))}"
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return Calibration(**{**cache[key], "cached": True})
    measured = measure(cfg)
    cache[key] = {k: v for k, v in asdict(measured).items() if k != "cached"}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, cache)
    return measured
