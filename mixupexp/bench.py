"""`python -m mixupexp.bench`: training speed of mixupexp against the study's way of training, side by side.

(a) reference: the study as it is usually written: a Dataset whose `__getitem__` converts one image to a
    normalised float tensor and mixes it with a random partner (NumPy's RNG, per sample), a torch DataLoader,
    an eager fp32 training step.
(b) mixupexp in eager fp32: the uint8 training set resident on the device, batches drawn and mixed with tensor
    ops, channels_last.
(c) mixupexp as `python -m mixupexp.train` trains by default on this device: (b) plus bf16 autocast where the
    hardware computes bf16 (CUDA, AVX512-BF16/AMX CPUs) and, on CUDA, the step captured in a CUDA graph.

Same data, model, batch size, optimizer and loss. After one warm-up epoch each (not timed: it includes CUDA
graph capture, cuDNN autotuning and the DataLoader's first start), timed epochs alternate a, b, c, a, b, c, ...
in one process, so that all see the same machine state. One JSON line reports the median seconds per epoch and
images/s of each, `speedup_fp32_eager` (b over a) and `speedup` (c over a): each step's share of the gain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np
import torch

from mixupexp.augment.batch import BatchMixer
from mixupexp.augment.loaders import DeviceBatches
from mixupexp.config.schema import DEFAULT_CACHE_DIR, ConfigError
from mixupexp.data.datasets import DataError, check_batch_size, load_data
from mixupexp.models.networks import SimpleCNN
from mixupexp.training.device import pick_device, versions
from mixupexp.training.engine import TrainStep, autocast_dtype, train_epoch
from mixupexp.training.loss import soft_cross_entropy
from mixupexp.training.optim import build_optimizer


class ReferenceMixupDataset(torch.utils.data.Dataset):
    """The study's per-sample mixup as commonly written: HWC uint8 -> normalised CHW float, NumPy RNG."""

    def __init__(self, images_hwc: np.ndarray, labels: np.ndarray, num_classes: int, mean, std,
                 ratio: float, alpha: float):
        self.images, self.labels, self.num_classes = images_hwc, labels, num_classes
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.ratio, self.alpha = ratio, alpha

    def __len__(self) -> int:
        return len(self.labels)

    def _sample(self, i: int):
        x = (self.images[i].astype(np.float32) / 255.0 - self.mean) / self.std
        y = np.zeros(self.num_classes, np.float32)
        y[self.labels[i]] = 1.0
        return x, y

    def __getitem__(self, i: int):
        x, y = self._sample(i)
        if np.random.rand() < self.ratio:
            lam = np.random.beta(self.alpha, self.alpha)
            x2, y2 = self._sample(np.random.randint(len(self)))
            x, y = lam * x + (1 - lam) * x2, lam * y + (1 - lam) * y2
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), torch.from_numpy(y)


def _worker_seed(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)  # else every worker draws the same partners and lambdas


def reference_epoch(model, optimizer, loader, device) -> None:
    model.train()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad(set_to_none=True)
        soft_cross_entropy(model(x), y).backward()
        optimizer.step()


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args) -> dict:
    device = pick_device(args.device)
    torch.manual_seed(0)
    np.random.seed(0)
    if args.data_root:
        data_cfg = SimpleNamespace(name="image_folder", root=args.data_root, image_size=None,
                                   cache_dir=DEFAULT_CACHE_DIR, train_subset=args.num_train)
    else:
        data_cfg = SimpleNamespace(name="synthetic", num_train=args.num_train, num_test=10, num_classes=10,
                                   image_size=32, signal=6.0, noise=60.0, data_seed=0, train_subset=None)
    data = load_data(data_cfg)
    check_batch_size(args.batch_size, data)
    mean, std = data.channel_stats()
    shape, classes = tuple(data.train_images.shape[1:]), data.num_classes
    optimizer_cfg = SimpleNamespace(name="adam", lr=1e-3, weight_decay=0.0)

    # (a) the reference normalises in the Dataset, so its model gets mean 0 / std 1.
    ref_model = SimpleCNN(classes, shape, torch.zeros(3), torch.ones(3)).to(device)
    ref_optimizer = torch.optim.Adam(ref_model.parameters(), lr=1e-3)
    ref_dataset = ReferenceMixupDataset(data.train_images.permute(0, 2, 3, 1).numpy(), data.train_labels.numpy(),
                                        classes, mean.numpy(), std.numpy(), args.ratio, args.alpha)
    ref_loader = torch.utils.data.DataLoader(
        ref_dataset, batch_size=args.batch_size, shuffle=True, num_workers=args.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=args.num_workers > 0, worker_init_fn=_worker_seed)

    # (b) mixupexp's training path in eager fp32 (what the device-resident batches and channels_last give), and
    # (c) as configured by default on this device (bf16 autocast where the hardware computes it, a CUDA graph).
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    batches = DeviceBatches(data.train_images.to(device), data.train_labels.to(device), classes,
                            args.batch_size, args.ratio, args.alpha)
    # The study's mixup happens inside DeviceBatches; its BatchMixer only passes the batch through.
    study_mixup = BatchMixer(None, args.alpha, args.ratio)

    def mixupexp_step(precision: str, graph: bool) -> TrainStep:
        model = SimpleCNN(classes, shape, mean, std).to(device, memory_format=torch.channels_last)
        optimizer = build_optimizer(optimizer_cfg, model.parameters(), device)
        return TrainStep(model, optimizer, autocast_dtype(precision, device), device, graph=graph)

    eager = mixupexp_step("fp32", graph=False)
    step = mixupexp_step(args.precision, graph=device.type == "cuda" and not args.no_cuda_graph)
    epochs = {
        "reference": lambda: reference_epoch(ref_model, ref_optimizer, ref_loader, device),
        "mixupexp_fp32_eager": lambda: train_epoch(eager, batches, study_mixup, device, "mixupexp fp32 eager epoch"),
        "mixupexp": lambda: train_epoch(step, batches, study_mixup, device, "mixupexp epoch"),
    }
    times: dict[str, list[float]] = {name: [] for name in epochs}
    for name, epoch in epochs.items():  # warm-up, not timed
        epoch()
        _sync(device)
    for _ in range(args.repeats):
        for name, epoch in epochs.items():
            start = time.perf_counter()
            epoch()
            _sync(device)
            times[name].append(time.perf_counter() - start)

    drawn = len(batches) * batches.batch_size
    images = {"reference": len(ref_dataset), "mixupexp_fp32_eager": drawn, "mixupexp": drawn}
    report = {
        "benchmark": "train_epoch",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "data": args.data_root or f"synthetic {args.num_train}x3x32x32",
        "batch_size": args.batch_size,
        "ratio": args.ratio,
        "alpha": args.alpha,
        "reference_num_workers": args.num_workers,
        "cuda_graph": step.graph is not None,
        "precision": str(step.amp_dtype or torch.float32).replace("torch.", ""),
        "warmup_epochs": 1,
        "timed_epochs": args.repeats,
    }
    for name in epochs:
        seconds = statistics.median(times[name])
        report[f"{name}_s_per_epoch"] = round(seconds, 4)
        report[f"{name}_images_per_s"] = round(images[name] / seconds, 1)
        report[f"{name}_s_per_epoch_all"] = [round(t, 4) for t in times[name]]
    # Each step's share: fp32 eager over the reference (data on the device, vectorised mixing, channels_last), then
    # the default over fp32 eager (precision, CUDA graph).
    report["speedup_fp32_eager"] = round(report["mixupexp_fp32_eager_images_per_s"] / report["reference_images_per_s"], 3)
    report["speedup"] = round(report["mixupexp_images_per_s"] / report["reference_images_per_s"], 3)
    report["versions"] = versions()
    return report


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m mixupexp.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--data-root", default=None, help="an image folder (ROOT/train/<class>/*) instead of synthetic data")
    parser.add_argument("--num-train", type=int, default=10000, help="training images (synthetic size, or a subset of --data-root)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ratio", type=float, default=0.2)
    parser.add_argument("--alpha", type=float, default=0.2)
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per path (after one warm-up epoch each)")
    parser.add_argument("--num-workers", type=int, default=0, help="DataLoader workers of the reference")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--no-cuda-graph", action="store_true")
    args = parser.parse_args(argv)
    for key in ("num_train", "batch_size", "repeats"):
        if getattr(args, key) <= 0:
            parser.error(f"--{key.replace('_', '-')} must be > 0")
    if args.num_workers < 0:
        parser.error("--num-workers must be >= 0")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        report = run(args)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
