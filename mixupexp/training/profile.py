"""How much of the hardware a training step uses: FLOP per image counted from the model, the CPU's peak from its
flags and clock, and where a step's time goes (data and mixing, forward, backward, optimizer) and an
evaluation's. `python -m mixupexp.bench` reports these next to its images/s.

The peak is a formula, not a measurement: cores x FMA pipes x fp32 lanes per pipe x 2 FLOP per FMA x clock.
What it assumes is spelled out in `cpu_peak_gflops`'s result, and where the clock cannot be read there is no
peak rather than a guess.
"""

from __future__ import annotations

import copy
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mixupexp.training.loss import soft_cross_entropy
from mixupexp.training.metrics import evaluate

STAGES = ("data", "forward", "backward", "optimizer")


# ---- FLOP --------------------------------------------------------------------------------------------------------

def training_flops(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOP of one training step's arithmetic on the batch (x, y): forward, soft-target loss and backward, as
    FlopCounterMode counts them (matrix products and convolutions; the backward counts only the gradients autograd
    asks for, so no input gradient for the first layer). Counted on a copy: the model's BatchNorm statistics and
    gradients stay as they were. The optimizer's and the elementwise work are left out, as FLOP counts usually do."""
    counted = copy.deepcopy(model).train()
    with FlopCounterMode(display=False) as counter:
        soft_cross_entropy(counted(x), y).backward()
    return counter.get_total_flops()


def inference_flops(model: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOP of one evaluation forward pass on x (no gradients)."""
    counted = copy.deepcopy(model).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        counted(x)
    return counter.get_total_flops()


# ---- The CPU's peak ----------------------------------------------------------------------------------------------

def cpu_info() -> dict:
    """Flags, vendor, family and model of CPU 0 from /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"flags": set(), "vendor": "", "family": None, "model_name": ""}
    first = text.split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    family = fields.get("cpu family")
    return {
        "flags": set(fields.get("flags", "").split()),
        "vendor": fields.get("vendor_id", ""),
        "family": int(family) if family and family.isdigit() else None,
        "model_name": fields.get("model name", ""),
    }


def read_cpu_clock() -> tuple[float | None, str]:
    """(GHz, how it was read) for the peak: the maximum (boost) clock where the kernel or lscpu says it, else the
    clock /proc/cpuinfo shows; (None, why) when none of them can be read."""
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) / 1e6, f"{path} (maximum clock)"
    except (OSError, ValueError):
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        lscpu = ""
    found = re.search(r"^CPU max MHz:\s*([\d.]+)", lscpu, re.M)
    if found and float(found.group(1)) > 0:
        return round(float(found.group(1)) / 1e3, 3), "lscpu 'CPU max MHz' (maximum clock)"
    try:
        mhz = [float(m) for m in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text(), re.M)]
    except OSError:
        mhz = []
    if mhz and max(mhz) > 0:
        # A virtual machine often shows its host's nominal clock here, and cores may boost above it: a step
        # measured above this peak means the clock read is too low, not that the step beats the hardware.
        return round(max(mhz) / 1e3, 3), "/proc/cpuinfo 'cpu MHz' (the current or nominal clock: no maximum clock is exposed, boost may be higher)"
    return None, "no clock readable (no cpufreq, no 'CPU max MHz' in lscpu, no 'cpu MHz' in /proc/cpuinfo)"


def physical_cores() -> tuple[int, str]:
    """Cores this process may run on, counting SMT siblings once (they share one core's FMA units)."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            cores.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return len(cores), f"{len(cpus)} CPUs in sched_getaffinity, {len(cores)} physical cores"


def cpu_peak_gflops(flags, ghz: float | None, cores: int, vendor: str = "", family: int | None = None) -> dict:
    """The fp32 (and, where native, bf16) peak GFLOP/s of `cores` cores at `ghz` with CPU flags `flags`.

    fp32 FLOP per cycle per core = FMA pipes x lanes x 2, assuming:
    - 2 FMA pipes on every x86 core with FMA (Zen 1-5 and Intel since Haswell; some Xeon Silver/Bronze and client
      Intel parts with AVX-512 have only one 512-bit pipe, where this overstates the peak 2x);
    - lanes from the widest datapath: 16 fp32 with avx512f, except AMD family 25 (Zen 4), which splits a 512-bit
      operation over its 256-bit pipes (8 lanes); 8 with avx2 or avx; 4 with sse only;
    - without FMA, one multiply and one add pipe: counted as one FMA pipe.
    bf16: avx512_bf16's dot product (vdpbf16ps) does 2 products per fp32 lane, twice the fp32 rate; AMX (amx_bf16)
    is 1024 bf16 FMA per cycle per core (Intel's figure for Sapphire Rapids). Without either, bf16 is emulated
    and has no peak of its own (None)."""
    flags = set(flags)
    if "avx512f" in flags:
        lanes, width = (8, "512-bit instructions on 256-bit pipes (Zen 4)") if vendor == "AuthenticAMD" and family == 25 \
            else (16, "avx512f, 512-bit pipes")
    elif "avx2" in flags or "avx" in flags:
        lanes, width = 8, "avx2" if "avx2" in flags else "avx"
    else:
        lanes, width = 4, "sse"
    pipes = 2 if "fma" in flags or "avx512f" in flags else 1
    fp32_per_cycle = pipes * lanes * 2
    if "amx_bf16" in flags:
        bf16_per_cycle, bf16_how = 2048, "AMX: 1024 bf16 FMA per cycle per core"
    elif "avx512_bf16" in flags:
        bf16_per_cycle, bf16_how = 2 * fp32_per_cycle, "avx512_bf16: twice the fp32 rate"
    else:
        bf16_per_cycle, bf16_how = None, "no native bf16"
    assumption = (f"{cores} cores x {pipes} FMA pipes x {lanes} fp32 lanes ({width}) x 2 FLOP = "
                  f"{cores * fp32_per_cycle} FLOP/cycle; bf16: {bf16_how}")
    peak = {"fp32": None, "bf16": None, "fp32_flop_per_cycle_per_core": fp32_per_cycle,
            "bf16_flop_per_cycle_per_core": bf16_per_cycle, "assumption": assumption}
    if ghz:
        peak["fp32"] = round(cores * fp32_per_cycle * ghz, 1)
        peak["bf16"] = round(cores * bf16_per_cycle * ghz, 1) if bf16_per_cycle else None
    return peak


def this_cpu_peak(threads: int | None = None) -> dict:
    """`cpu_peak_gflops` of this machine, with how the clock and the cores were read; of `threads` cores where
    fewer threads than cores compute."""
    info = cpu_info()
    ghz, clock_source = read_cpu_clock()
    cores, cores_source = physical_cores()
    if threads is not None and threads < cores:
        cores, cores_source = threads, f"{cores_source}, of which {threads} used (torch threads)"
    peak = cpu_peak_gflops(info["flags"], ghz, cores, info["vendor"], info["family"])
    peak.update(cpu=info["model_name"] or "unknown", ghz=ghz, clock_source=clock_source, cores=cores,
                cores_source=cores_source)
    return peak


# ---- Where a step's time goes ------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_stages(step, batches, prepare, device: torch.device, steps: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per training step of each stage, timed with the device synchronised between them:
    `data` (drawing the batch, mixing it, `prepare`: moving it to the device, its memory format), `forward`
    (model and loss, `step.forward_loss`), `backward`, `optimizer` (zeroing the gradients and the update). The
    stages run the same code as `step` does eagerly (on CUDA a captured graph replays them in one launch; its
    stages are timed eagerly here). Medians, because a step preempted by other work on the machine would
    otherwise dominate a stage; `fastest_step` is the quickest whole step seen, the nearest to what the hardware
    does undisturbed where other work shares the cores. `steps` (after `warmup` untimed ones) may run over
    several epochs of `batches`."""
    times = {stage: [] for stage in STAGES}
    whole = []
    done, batch_iter = 0, iter(batches)
    while done < warmup + steps:
        _sync(device)
        t0 = time.perf_counter()
        try:
            x, y = next(batch_iter)
        except StopIteration:
            batch_iter = iter(batches)
            continue
        t_zero = time.perf_counter()
        step.optimizer.zero_grad(set_to_none=True)
        t_data = time.perf_counter()
        x, y = prepare(x, y)
        _sync(device)
        t1 = time.perf_counter()
        loss = step.forward_loss(x, y)
        _sync(device)
        t2 = time.perf_counter()
        loss.backward()
        _sync(device)
        t3 = time.perf_counter()
        step.optimizer.step()
        _sync(device)
        t4 = time.perf_counter()
        if done >= warmup:
            zeroing = t_data - t_zero
            for stage, seconds in zip(STAGES, (t1 - t0 - zeroing, t2 - t1, t3 - t2, t4 - t3 + zeroing)):
                times[stage].append(seconds)
            whole.append(t4 - t0)
        done += 1
    return {**{stage: statistics.median(values) for stage, values in times.items()}, "fastest_step": min(whole)}


def evaluation_seconds(model, images, labels, batch_size: int, device: torch.device, repeats: int = 3,
                       fold: bool = True) -> float:
    """Median seconds of one `evaluate` (what every epoch of a run does on its test split), after one untimed."""
    return evaluation_times(model, images, labels, batch_size, device, repeats, folds=(fold,))[fold]


def evaluation_times(model, images, labels, batch_size: int, device: torch.device, repeats: int = 3,
                     folds=(False, True)) -> dict[bool, float]:
    """{fold: median seconds of one `evaluate(..., fold=fold)`}: each after one untimed, the arms taking turns
    in every repeat, so that a change in the machine's speed reaches them alike."""
    for fold in folds:
        evaluate(model, images, labels, batch_size, device, fold=fold)
    times: dict[bool, list[float]] = {fold: [] for fold in folds}
    for _ in range(repeats):
        for fold in folds:
            _sync(device)
            start = time.perf_counter()
            evaluate(model, images, labels, batch_size, device, fold=fold)
            _sync(device)
            times[fold].append(time.perf_counter() - start)
    return {fold: statistics.median(values) for fold, values in times.items()}
