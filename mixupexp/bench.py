"""`python -m mixupexp.bench`: training speed of mixupexp against the study's way of training, side by side.

(a) reference: the study as it is usually written: a Dataset whose `__getitem__` converts one image to a
    normalised float tensor and mixes it with a random partner (NumPy's RNG, per sample), a torch DataLoader,
    an eager fp32 training step.
(b) mixupexp in eager fp32: the uint8 training set resident on the device, batches drawn and mixed with tensor
    ops, channels_last.
(c) mixupexp as `python -m mixupexp.train` trains by default on this device: (b) plus bf16 autocast where the
    hardware computes bf16 (CUDA, AVX512-BF16/AMX CPUs) and, on CUDA, the step captured in a CUDA graph.

Same data, model, batch size, optimizer and loss. After one warm-up epoch each (not timed: it includes CUDA
graph capture, cuDNN autotuning and the DataLoader's first start), timed epochs alternate in one process, so
that all see the same machine state, and the order turns each round (a, b, c; b, c, a; c, a, b; ...), so that
no arm always runs after the same one. One JSON line reports the median seconds per epoch and images/s of each,
`speedup_fp32_eager` (b over a) and `speedup` (c over a): each step's share of the gain. Where (c) resolves to
the very step of (b) (a CPU without native bf16: precision auto is fp32 there, and no CUDA graph),
`configured_is_fp32_eager` says so: any gap between the two is then the benchmark's own spread.

It also reports how much of the hardware each arm uses (training/profile.py): the FLOP of one training image
counted from the model, each arm's GFLOP/s, the CPU's peak from its flags and clock (on a CPU), each arm's
median time per stage of a step (data and mixing, forward, backward, optimizer) and the time of one evaluation
of the test split; a table of these goes to stderr, the JSON line to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import numpy as np
import torch

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.augment.batch import BatchMixer
from mixupexp.augment.loaders import DeviceBatches
from mixupexp.config.schema import DEFAULT_CACHE_DIR, ConfigError, TrainerConfig
from mixupexp.data.datasets import DataError, check_batch_size, load_data
from mixupexp.models.networks import SimpleCNN
from mixupexp.training.device import pick_device, versions
from mixupexp.training.engine import TrainStep, autocast_dtype, train_epoch
from mixupexp.training.loss import soft_cross_entropy
from mixupexp.training.optim import build_optimizer
from mixupexp.training.profile import (
    STAGES,
    evaluation_times,
    inference_flops,
    step_stages,
    this_cpu_peak,
    training_flops,
)


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


def round_order(names: list[str], round_: int) -> list[str]:
    """The arms' order in timed round `round_`: turned by one each round. A fixed order would give each arm the
    same predecessor every round (its caches, allocator and clock state), a bias of its own."""
    turn = round_ % len(names)
    return names[turn:] + names[:turn]


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run(args) -> dict:
    device = pick_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    load_at_start = os.getloadavg()
    torch.manual_seed(0)
    np.random.seed(0)
    if args.data_root:
        data_cfg = SimpleNamespace(name="image_folder", root=args.data_root, image_size=None,
                                   cache_dir=DEFAULT_CACHE_DIR, train_subset=args.num_train)
    else:
        data_cfg = SimpleNamespace(name="synthetic", num_train=args.num_train, num_test=args.num_test, num_classes=10,
                                   image_size=32, signal=6.0, noise=60.0, data_seed=0, train_subset=None)
    data = load_data(data_cfg)
    check_batch_size(args.batch_size, len(data.train_labels))
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
    cpu_times: dict[str, list[float]] = {name: [] for name in epochs}
    for name, epoch in epochs.items():  # warm-up, not timed
        epoch()
        _sync(device)
    for round_ in range(args.repeats):
        for name in round_order(list(epochs), round_):
            epoch = epochs[name]
            start, cpu_start = time.perf_counter(), time.process_time()
            epoch()
            _sync(device)
            times[name].append(time.perf_counter() - start)
            cpu_times[name].append(time.process_time() - cpu_start)

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
        "configured_is_fp32_eager": step.amp_dtype is None and step.graph is None and not step.capture_pending,
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
    for name in epochs:
        # CPU seconds of this process (all its threads, DataLoader workers not counted): well under threads x wall
        # seconds means the arm shared the cores with other work.
        report[f"{name}_cpu_s_per_epoch"] = round(statistics.median(cpu_times[name]), 4)
    if not args.no_profile:
        steps = {"reference": TrainStep(ref_model, ref_optimizer, None, device), "mixupexp_fp32_eager": eager,
                 "mixupexp": step}
        report.update(hardware_share(args, device, data, batches, study_mixup, ref_loader, steps, report))
    report["load_average"] = {"start": [round(v, 2) for v in load_at_start],
                              "end": [round(v, 2) for v in os.getloadavg()]}
    report["versions"] = versions()
    return report


def hardware_share(args, device, data, batches, study_mixup, ref_loader, steps: dict, report: dict) -> dict:
    """FLOP per image, GFLOP/s and share of the peak of each arm, the time per stage of a step and of an
    evaluation (training/profile.py)."""
    x, y = next(iter(batches))
    x = x.contiguous(memory_format=torch.channels_last)
    flop_train = training_flops(steps["mixupexp"].model, x, y) / len(y)
    flop_eval = inference_flops(steps["mixupexp"].model, x) / len(y)
    out = {"flop_per_train_image": int(flop_train), "flop_per_eval_image": int(flop_eval)}
    peak = this_cpu_peak(torch.get_num_threads()) if device.type == "cpu" else None
    if peak is not None:
        out["cpu_peak"] = peak
    for name in steps:
        gflops = report[f"{name}_images_per_s"] * flop_train / 1e9
        out[f"{name}_gflops"] = round(gflops, 1)
        # bf16 autocast runs the convolutions and products in bf16: its share is of the bf16 peak.
        kind = "bf16" if name == "mixupexp" and steps[name].amp_dtype == torch.bfloat16 else "fp32"
        if peak is not None and peak.get(kind):
            out[f"{name}_peak_share"] = round(gflops / peak[kind], 3)
            out[f"{name}_peak_kind"] = kind

    def device_batch(x, y):
        x, y = study_mixup(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last), y

    def reference_batch(x, y):
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    for name, step in steps.items():
        source, prepare = (ref_loader, reference_batch) if name == "reference" else (batches, device_batch)
        stages = step_stages(step, source, prepare, device, args.profile_steps)
        fastest = stages.pop("fastest_step")
        out[f"{name}_stages_ms"] = {stage: round(seconds * 1e3, 2) for stage, seconds in stages.items()}
        out[f"{name}_fastest_step_ms"] = round(fastest * 1e3, 2)
        out[f"{name}_fastest_step_gflops"] = round(args.batch_size * flop_train / fastest / 1e9, 1)
        kind = out.get(f"{name}_peak_kind")
        if kind:
            out[f"{name}_fastest_step_peak_share"] = round(out[f"{name}_fastest_step_gflops"] / peak[kind], 3)
    test_images, test_labels = data.test_images.to(device), data.test_labels.to(device)
    # The evaluation every epoch runs (BatchNorm folded into the convolutions), beside the model as it is.
    times = evaluation_times(steps["mixupexp"].model, test_images, test_labels, args.eval_batch_size, device,
                             repeats=args.repeats)
    fp32 = peak.get("fp32") if peak is not None else None
    for key, fold in (("evaluation", True), ("evaluation_unfolded", False)):
        seconds = times[fold]
        gflops = len(test_labels) * flop_eval / seconds / 1e9
        out[key] = {
            "images": len(test_labels), "batch_size": args.eval_batch_size, "s": round(seconds, 4),
            "images_per_s": round(len(test_labels) / seconds, 1), "gflops": round(gflops, 1),
            # The evaluation runs in fp32: its share is of the fp32 peak.
            "fp32_peak_share": round(gflops / fp32, 3) if fp32 else None,
            # What one evaluation of the test split adds to one epoch over all of this training set.
            "share_of_epoch": round(seconds / (seconds + len(data.train_labels) / report["mixupexp_images_per_s"]), 3),
        }
    return out


def table(report: dict) -> str:
    """The hardware share of each arm as a few aligned lines (stderr; the JSON line holds the same numbers)."""
    lines = []
    peak = report.get("cpu_peak")
    if peak:
        fp32 = f"{peak['fp32']} GFLOP/s fp32" if peak["fp32"] else "fp32 peak unknown"
        bf16 = f", {peak['bf16']} GFLOP/s bf16" if peak.get("bf16") else ""
        lines.append(f"peak: {fp32}{bf16} ({peak['assumption']}; clock {peak['ghz']} GHz from {peak['clock_source']})")
    lines.append(f"FLOP per training image {report['flop_per_train_image'] / 1e6:.1f} M (forward + backward), "
                 f"per evaluated image {report['flop_per_eval_image'] / 1e6:.1f} M")
    header = ["arm", "images/s", "GFLOP/s", "% of peak", *(f"{s} ms" for s in STAGES), "step ms",
              "fastest step ms", "its % of peak"]
    rows = [header]
    for name in ("reference", "mixupexp_fp32_eager", "mixupexp"):
        stages = report[f"{name}_stages_ms"]
        share = report.get(f"{name}_peak_share")
        rows.append([name, f"{report[f'{name}_images_per_s']:.0f}", f"{report[f'{name}_gflops']:.1f}",
                     f"{100 * share:.0f} % {report[f'{name}_peak_kind']}" if share is not None else "-",
                     *(f"{stages[s]:.1f}" for s in STAGES), f"{sum(stages.values()):.1f}",
                     f"{report[f'{name}_fastest_step_ms']:.1f}",
                     f"{100 * report[f'{name}_fastest_step_peak_share']:.0f} %" if share is not None else "-"])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines += ["  ".join(cell.rjust(w) for cell, w in zip(row, widths)) for row in rows]
    for key, what in (("evaluation", "folded, as every epoch runs it"), ("evaluation_unfolded", "the model as it is")):
        ev = report[key]
        share = f", {100 * ev['fp32_peak_share']:.0f} % of the fp32 peak" if ev.get("fp32_peak_share") else ""
        lines.append(f"evaluation of {ev['images']} test images (batch {ev['batch_size']}, {what}): {ev['s']:.2f} s, "
                     f"{ev['images_per_s']:.0f} images/s, {ev['gflops']:.1f} GFLOP/s{share}, "
                     f"{100 * ev['share_of_epoch']:.0f} % of an epoch of this training set")
    return "\n".join(lines)


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
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's, every core)")
    parser.add_argument("--num-test", type=int, default=10000, help="synthetic test images, for the evaluation's time")
    parser.add_argument("--eval-batch-size", type=int, default=TrainerConfig.eval_batch_size,
                        help="images per forward pass of the evaluation "
                             f"(trainer.eval_batch_size, {TrainerConfig.eval_batch_size})")
    parser.add_argument("--profile-steps", type=int, default=20, help="steps per arm timed stage by stage")
    parser.add_argument("--no-profile", action="store_true", help="only the epochs: no FLOP count, stages or evaluation")
    args = parser.parse_args(argv)
    for key in ("num_train", "batch_size", "repeats", "num_test", "eval_batch_size", "profile_steps"):
        if getattr(args, key) <= 0:
            parser.error(f"--{key.replace('_', '-')} must be > 0")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
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
    if "evaluation" in report:
        print(table(report), file=sys.stderr)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
