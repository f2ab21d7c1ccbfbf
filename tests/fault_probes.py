"""Fault and bad-input probes of `python -m mixupexp.train` and `python -m mixupexp.summarize`, run as a user
runs them, each in a fresh directory, on tiny synthetic runs (a CPU is enough).

    python tests/fault_probes.py                 # every probe; prints one line per probe and the counts
    python tests/fault_probes.py --only kill     # the probes whose name starts with `kill`
    python tests/fault_probes.py --list          # their names

A probe is clean when the command did what reliability.md promises: bad input and refused commands are one line
`error: ...` on stderr with the documented exit status, no traceback, and nothing that existed is changed; a fault
(a kill, a full disk, a signal) at an exact write leaves nothing lost: the rerun ends with every epoch in
metrics.csv, the result of an unbroken run, no lock and no temporary file. Faults are injected at the exact write
by tests/inject.py. The probes of a real full or read-only file system mount a small tmpfs and are skipped where
that is not permitted. Not a test of the suite: it takes minutes (run it in parts with --only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

TESTS = Path(__file__).resolve().parent
TINY = ["data=synthetic", "data.num_train=256", "data.num_test=128", "data.image_size=16", "model.widths=[8,16,16,16]",
        "model.hidden=32", "trainer.batch_size=64", "trainer.progress=off", "eval.fgsm_eps=[]"]
EPOCHS3 = [*TINY, "trainer.epochs=3"]
PROBES: dict[str, Callable[[Path], tuple[bool | None, str]]] = {}


def probe(name: str):
    def register(function):
        PROBES[name] = function
        return function
    return register


def run(args: list[str], cwd: Path, module: str = "mixupexp.train", fault: str | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, str(TESTS / "inject.py")] if fault else [sys.executable, "-m", module]
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **({"MIXUPEXP_FAULT": fault} if fault else {})}
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(Path(directory).rglob("*")) if p.is_file()}


def one_line(proc: subprocess.CompletedProcess, code: int | None = None, nonzero: bool = False) -> tuple[bool, str]:
    lines = proc.stderr.strip().splitlines()
    ok = len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    ok = ok and (proc.returncode != 0 if nonzero else proc.returncode == code)
    return ok, f"exit {proc.returncode}, {len(lines)} stderr line(s): {lines[-1][:150] if lines else ''}"


def result(run_dir: Path) -> dict:
    return json.loads((run_dir / "result.json").read_text())


def rows(run_dir: Path) -> int:
    return len((run_dir / "metrics.csv").read_text().strip().splitlines()) - 1


# ------------------------------------------------------------------------------------------------ bad input

BAD_VALUES = {
    "seed=-1": "seed", "seed=1099511627776": "seed", "data.data_seed=-1": "data.data_seed",
    "data.noise=-1": "data.noise", "data.noise=nan": "data.noise", "data.signal=inf": "data.signal",
    "optimizer.weight_decay=nan": "optimizer.weight_decay", "optimizer.weight_decay=inf": "optimizer.weight_decay",
    "optimizer=sgd optimizer.momentum=-1": "optimizer.momentum", "optimizer=sgd optimizer.momentum=nan":
    "optimizer.momentum", "optimizer=sgd optimizer.nesterov=true optimizer.momentum=0": "optimizer.momentum",
    "optimizer.lr=inf": "optimizer.lr", "data.image_size=-5": "data.image_size", "data.image_size=1": "data.image_size",
    "data.image_size=0": "data.image_size", "data.image_size=32 model.widths=[8,8,8,8,8,8]": "model.widths",
    "logger=tensorboard +logger.tensorboard.dirr=x": "logger.tensorboard.dirr",
    "+logger.tensorboard.dirr=x": "logger.tensorboard.dirr",
    "augment=mixup augment.alpha=-1": "augment.alpha", "augment=mixup augment.alpha=inf": "augment.alpha",
    "augment.ratio=2": "augment.ratio", "augment.ratio=nan": "augment.ratio", "trainer.epochs=0": "trainer.epochs",
    "trainer.batch_size=0": "trainer.batch_size", "optimizer.lr=-1": "optimizer.lr",
    "optimizer=sgd optimizer.schedule=step optimizer.gamma=inf": "optimizer.gamma",
    "trainer.epoch=3": "trainer.epoch", "+trainer.epoch=3": "trainer.epoch", "augment=cutmixx": "augment/cutmixx",
    "augment.alpha=0.1,0.2": "augment.alpha", "eval.fgsm_eps=[300]": "eval.fgsm_eps",
    "data.val_size=-1": "data.val_size", "data.train_subset=0": "data.train_subset", "trainer.threads=0":
    "trainer.threads", "augment.label_smoothing=1": "augment.label_smoothing",
}


def _bad_value(override: str, key: str):
    def check(tmp: Path):
        # One epoch where the value is accepted (it would otherwise train the default 30).
        epochs = [] if "trainer.epoch" in override else ["trainer.epochs=1"]
        proc = run([*TINY, *epochs, *override.split()], tmp)
        ok, detail = one_line(proc, 2)
        ok = ok and key in proc.stderr and not (tmp / "outputs").exists()
        return ok, detail
    return check


for _override, _key in BAD_VALUES.items():
    probe(f"value {_override}")(_bad_value(_override, _key))


def make_folder(root: Path, classes=("cat", "dog"), per_class=8, size=16) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for k in range(per_class):
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(root / split / name / f"{k}.png")
    return root


FOLDER = ["model.widths=[8,16,16,16]", "model.hidden=32", "trainer.batch_size=4", "trainer.progress=off",
          "eval.fgsm_eps=[]", "trainer.epochs=1", "data=image_folder"]


def folder_args(tmp: Path, root: Path, *extra: str) -> list[str]:
    return [*FOLDER, f"data.root={root}", f"data.cache_dir={tmp / 'cache'}", f"hydra.run.dir={tmp / 'run'}", *extra]


@probe("folder link loop")
def _(tmp):
    root = make_folder(tmp / "set")
    os.symlink("..", root / "train" / "cat" / "loop")
    proc = run(folder_args(tmp, root), tmp)
    return proc.returncode == 0 and "(16 train /" in proc.stdout, f"exit {proc.returncode}, {proc.stderr.strip()[-150:]}"


@probe("folder hidden class")
def _(tmp):
    root = make_folder(tmp / "set")
    make_folder(tmp / "hidden", classes=(".ipynb_checkpoints",))
    for split in ("train", "test"):
        shutil.move(str(tmp / "hidden" / split / ".ipynb_checkpoints"), root / split)
    proc = run(folder_args(tmp, root), tmp)
    return proc.returncode == 0 and "2 classes)" in proc.stdout, f"exit {proc.returncode}"


@probe("folder one class")
def _(tmp):
    root = make_folder(tmp / "set", classes=("cat",))
    proc = run(folder_args(tmp, root), tmp)
    ok, detail = one_line(proc, 2)
    return ok and "class" in proc.stderr and not (tmp / "run").exists(), detail


@probe("folder dangling link")
def _(tmp):
    root = make_folder(tmp / "set")
    os.symlink(tmp / "gone.png", root / "train" / "cat" / "9.png")
    proc = run(folder_args(tmp, root), tmp)
    ok, detail = one_line(proc, 2)
    return ok and "9.png" in proc.stderr, detail


@probe("folder corrupt image")
def _(tmp):
    root = make_folder(tmp / "set")
    (root / "test" / "dog" / "2.png").write_bytes(b"broken")
    proc = run(folder_args(tmp, root), tmp)
    ok, detail = one_line(proc, 2)
    return ok and "2.png" in proc.stderr, detail


@probe("folder images too small for the model")
def _(tmp):
    root = make_folder(tmp / "set", size=8)
    proc = run(folder_args(tmp, root), tmp)
    ok, detail = one_line(proc, 2)
    return ok and "model.widths" in proc.stderr and not (tmp / "run" / "result.json").exists(), detail


@probe("folder different classes")
def _(tmp):
    root = make_folder(tmp / "set")
    os.rename(root / "test" / "dog", root / "test" / "cow")
    proc = run(folder_args(tmp, root), tmp)
    return one_line(proc, 2)


@probe("cache of another folder under this name")
def _(tmp):
    this, other = make_folder(tmp / "this"), make_folder(tmp / "other", per_class=12)
    run(folder_args(tmp / "o", other), tmp)
    run(folder_args(tmp, this), tmp)
    (mine,), (theirs,) = (tmp / "cache").glob("*.pt"), (tmp / "o" / "cache").glob("*.pt")
    mine.write_bytes(theirs.read_bytes())
    shutil.rmtree(tmp / "run")
    proc = run(folder_args(tmp, this), tmp)
    return proc.returncode == 0 and "(16 train /" in proc.stdout, f"exit {proc.returncode}"


@probe("cache with flipped bytes")
def _(tmp):
    import torch

    root = make_folder(tmp / "set")
    run(folder_args(tmp, root), tmp)
    (path,) = (tmp / "cache").glob("*.pt")
    images = torch.load(path, weights_only=True)["train_images"]
    raw = bytearray(path.read_bytes())
    at = raw.find(images.numpy().tobytes())
    raw[at: at + 3072] = bytes(b ^ 0xFF for b in raw[at: at + 3072])
    path.write_bytes(bytes(raw))
    shutil.rmtree(tmp / "run")
    proc = run(folder_args(tmp, root), tmp)
    # The images are decoded (and the cache checked) before the run's log starts: the warning is on stderr.
    return proc.returncode == 0 and "checksum" in proc.stdout + proc.stderr, f"exit {proc.returncode}"


# ------------------------------------------------------------------------------------------------ results

DAMAGED = {
    "truncated": lambda text: text[: len(text) // 2],
    "[]": lambda text: "[]",
    "null": lambda text: "null",
    "config null": lambda text: json.dumps({"config": None}),
    "test_acc abc": lambda text: json.dumps({**json.loads(text), "test_acc": "abc"}),
    "ok without test_acc": lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "test_acc"}),
}


def _finished(tmp: Path, name: str = "run", extra=()) -> Path:
    proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={tmp / name}", *extra], tmp)
    if proc.returncode:
        raise RuntimeError(f"setup run failed: {proc.stderr.strip()[-300:]}")
    return tmp / name


def _summary_of_damaged(damage: str):
    def check(tmp: Path):
        sweep = tmp / "sweep"
        proc = run(["--multirun", *TINY, "trainer.epochs=1", "seed=0,1,2", f"hydra.sweep.dir={sweep}"], tmp)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-300:])
        path = sorted(sweep.glob("*/result.json"))[0]
        path.write_text(DAMAGED[damage](path.read_text()))
        proc = run([str(sweep), "--no-plots"], tmp, module="mixupexp.summarize")
        ok = proc.returncode == 0 and "Traceback" not in proc.stderr and f"left out: {path}" in proc.stdout
        return ok, f"exit {proc.returncode}, {(proc.stderr.strip().splitlines() or [''])[-1][:120]}"
    return check


def _train_over_damaged(damage: str):
    def check(tmp: Path):
        run_dir = _finished(tmp)
        (run_dir / "result.json").write_text(DAMAGED[damage]((run_dir / "result.json").read_text()))
        before = snapshot(run_dir)
        proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={run_dir}"], tmp)
        ok, detail = one_line(proc, 2)
        return ok and "result.json" in proc.stderr and snapshot(run_dir) == before, detail
    return check


for _damage in DAMAGED:
    probe(f"summary {_damage}")(_summary_of_damaged(_damage))
    probe(f"train over result {_damage}")(_train_over_damaged(_damage))


@probe("finished run.lock is a directory")
def _(tmp):
    run_dir = _finished(tmp)
    (run_dir / "run.lock").mkdir()
    before = snapshot(run_dir)
    proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={run_dir}"], tmp)
    ok, detail = one_line(proc, nonzero=True)
    return ok and snapshot(run_dir) == before, detail


@probe("finished refused other config")
def _(tmp):
    run_dir = _finished(tmp)
    before = snapshot(run_dir)
    proc = run([*TINY, "trainer.epochs=1", "data.noise=30", f"hydra.run.dir={run_dir}"], tmp)
    ok, detail = one_line(proc, 2)
    return ok and snapshot(run_dir) == before, detail


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])


@probe("finished clash single run")
def _(tmp):
    run_dir = _finished(tmp)
    other = _sleeper()
    try:
        (run_dir / "run.lock").write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename,
                                                       "invocation": "another", "since": "now"}))
        before = snapshot(run_dir)
        proc = run([*TINY, "trainer.epochs=1", "eval.fgsm_eps=[1]", f"hydra.run.dir={run_dir}"], tmp)
    finally:
        other.kill()
        other.wait()
    ok, detail = one_line(proc, 1)
    return ok and snapshot(run_dir) == before, detail


@probe("finished clash in a sweep")
def _(tmp):
    sweep = tmp / "sweep"
    run(["--multirun", *TINY, "trainer.epochs=1", "seed=0", f"hydra.sweep.dir={sweep}"], tmp)
    (held,) = [p.parent for p in sweep.glob("*/result.json")]
    other = _sleeper()
    try:
        (held / "run.lock").write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename,
                                                   "invocation": "another", "since": "now"}))
        before = snapshot(held)
        proc = run(["--multirun", *TINY, "trainer.epochs=1", "eval.fgsm_eps=[1]", "seed=0,1",
                    f"hydra.sweep.dir={sweep}"], tmp)
    finally:
        other.kill()
        other.wait()
    after = snapshot(held)
    after.pop("train.log", None), before.pop("train.log", None)  # a sweep's job appends a line to its log
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    return proc.returncode == 1 and "clash" in last and after == before, f"exit {proc.returncode}: {last[:120]}"


@probe("lock of a pid reused by another process")
def _(tmp):
    run_dir = tmp / "run"
    run_dir.mkdir()
    other = _sleeper()
    try:
        (run_dir / "run.lock").write_text(json.dumps({"pid": other.pid, "host": os.uname().nodename,
                                                       "invocation": "another", "since": "yesterday",
                                                       "process_start": "an earlier boot:1"}))
        proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={run_dir}"], tmp)
    finally:
        other.kill()
        other.wait()
    return proc.returncode == 0 and result(run_dir)["status"] == "ok", f"exit {proc.returncode}: {proc.stderr[-120:]}"


# ------------------------------------------------------------------------------------------------ faults


_REFERENCE: dict[str, dict] = {}


def _reference(tmp: Path) -> dict:
    """metrics and test_acc of an unbroken 3-epoch run (computed once per process)."""
    if "run" not in _REFERENCE:
        run_dir = tmp / "reference"
        proc = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
        if proc.returncode:
            raise RuntimeError(proc.stderr[-300:])
        _REFERENCE["run"] = {"metrics": _metrics(run_dir), "test_acc": result(run_dir)["test_acc"]}
    return _REFERENCE["run"]


def _metrics(run_dir: Path) -> list[list[str]]:
    lines = (run_dir / "metrics.csv").read_text().strip().splitlines()
    header = lines[0].split(",")
    keep = [i for i, h in enumerate(header) if h != "seconds"]
    return [[line.split(",")[i] for i in keep] for line in lines]


# The atomic writes of a 3-epoch run, in order: result.json (running), then per epoch checkpoint.pt and
# metrics.csv, then model.pt and result.json (ok).
WRITES = ["result.json:1", "checkpoint.pt:1", "metrics.csv:1", "checkpoint.pt:2", "metrics.csv:2", "checkpoint.pt:3",
          "metrics.csv:3", "model.pt:1", "result.json:2"]


def _kill(write: str, when: str):
    def check(tmp: Path):
        reference = _reference(tmp)
        run_dir = tmp / "run"
        killed = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault=f"{write}:{when}:SIGKILL")
        if killed.returncode != -signal.SIGKILL:
            return False, f"not killed: exit {killed.returncode} {killed.stderr[-200:]}"
        again = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
        if again.returncode:
            return False, f"rerun exit {again.returncode}: {again.stderr.strip()[-150:]}"
        done = result(run_dir)
        problems = []
        if _metrics(run_dir) != reference["metrics"]:
            problems.append(f"metrics.csv has {rows(run_dir)} rows or other values than an unbroken run")
        if done["status"] != "ok" or done["test_acc"] != reference["test_acc"]:
            problems.append(f"result {done['status']} {done.get('test_acc')}")
        if list(run_dir.glob(".*.tmp")) or list(run_dir.glob(".hydra/.*.tmp")):
            problems.append(f"temporary files left: {[p.name for p in run_dir.rglob('.*.tmp')]}")
        if (run_dir / "run.lock").exists():
            problems.append("lock left")
        return not problems, "; ".join(problems) or "rerun complete and equal to an unbroken run"
    return check


for _write in WRITES:
    for _when in ("during", "after"):
        probe(f"kill {_when} {_write}")(_kill(_write, _when))


def _refused_write(write: str, code: str):
    def check(tmp: Path):
        run_dir = tmp / "run"
        proc = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault=f"{write}:during:{code}")
        ok, detail = one_line(proc, nonzero=True)
        name = write.split(":")[0]
        reason = {"ENOSPC": "no space left on device", "EROFS": "read-only file system"}[code]
        empty = [p.name for p in run_dir.rglob("*") if p.is_file() and p.stat().st_size == 0]
        return ok and name in proc.stderr and reason in proc.stderr and not empty, detail + (f"; empty {empty}" if empty else "")
    return check


for _write in ("result.json:1", "checkpoint.pt:1", "metrics.csv:1", "model.pt:1", "result.json:2"):
    probe(f"disk full at {_write}")(_refused_write(_write, "ENOSPC"))
probe("read-only at result.json:1")(_refused_write("result.json:1", "EROFS"))


def _mounted(tmp: Path, options: str) -> Path | None:
    target = tmp / "mnt"
    target.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True).returncode:
        return None
    return target


def _unmount(target: Path) -> None:
    subprocess.run(["umount", str(target)], capture_output=True)


@probe("real full disk")
def _(tmp):
    target = _mounted(tmp, "size=1m")
    if target is None:
        return None, "skipped: cannot mount a tmpfs here"
    try:
        with open(target / "filler", "wb") as f:
            try:
                f.write(b"\0" * 2**21)
            except OSError:
                pass
        proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={target / 'run'}"], tmp)
        ok, detail = one_line(proc, nonzero=True)
        empty = [str(p) for p in target.rglob("*") if p.is_file() and p.stat().st_size == 0]
        return ok and "no space left on device" in proc.stderr and not empty, detail + (f"; empty {empty}" if empty else "")
    finally:
        _unmount(target)


@probe("real disk filling up during the run")
def _(tmp):
    target = _mounted(tmp, "size=2m")
    if target is None:
        return None, "skipped: cannot mount a tmpfs here"
    try:
        (target / "filler").write_bytes(b"\0" * (900 * 2**10))  # leaves about 1.1 MiB: the start-up check passes
        # A wide hidden layer makes the checkpoint (weights and Adam's two moments) larger than what is left.
        proc = run([*TINY, "model.hidden=4096", "trainer.epochs=2", f"hydra.run.dir={target / 'run'}"], tmp)
        ok, detail = one_line(proc, nonzero=True)
        empty = [str(p) for p in target.rglob("*") if p.is_file() and p.stat().st_size == 0]
        ok = ok and "no space left on device" in proc.stderr and not empty and not list(target.rglob(".*.tmp"))
        return ok, detail + (f"; empty {empty}" if empty else "")
    finally:
        _unmount(target)


@probe("real read-only output")
def _(tmp):
    target = _mounted(tmp, "size=1m,ro")
    if target is None:
        return None, "skipped: cannot mount a tmpfs here"
    try:
        proc = run([*TINY, "trainer.epochs=1", f"hydra.run.dir={target / 'run'}"], tmp)
        ok, detail = one_line(proc, nonzero=True)
        return ok and "read-only" in proc.stderr, detail
    finally:
        _unmount(target)


def _signal_after_checkpoint(name: str, code: int):
    def check(tmp: Path):
        run_dir = tmp / "run"
        proc = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault=f"checkpoint.pt:1:after:{name}")
        lines = proc.stderr.strip().splitlines()
        ok = (proc.returncode == code and len(lines) == 1 and lines[0].startswith("interrupted; resume with: ")
              and result(run_dir)["status"] == "interrupted" and not (run_dir / "run.lock").exists())
        return ok, f"exit {proc.returncode}, {len(lines)} line(s), status {result(run_dir).get('status')}"
    return check


probe("signal SIGTERM after checkpoint")(_signal_after_checkpoint("SIGTERM", 143))
probe("signal SIGINT after checkpoint")(_signal_after_checkpoint("SIGINT", 130))


def _ctrl_c_at(seconds: float):
    def check(tmp: Path):
        proc = subprocess.Popen([sys.executable, "-m", "mixupexp.train", *TINY, "trainer.epochs=30"], cwd=tmp,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
                                env={**os.environ, "HYDRA_FULL_ERROR": "0"})
        time.sleep(seconds)  # a probe of start-up at some moment, not a test: the suite injects it exactly
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
        lines = err.strip().splitlines()
        ok = "Traceback" not in err and len(lines) <= 1 and proc.returncode in (130, -signal.SIGINT)
        return ok, f"exit {proc.returncode}, {len(lines)} stderr line(s): {lines[-1][:100] if lines else ''}"
    return check


for _seconds in (0.5, 1.5, 3.0):
    probe(f"ctrl-c at {_seconds} s")(_ctrl_c_at(_seconds))


@probe("checkpoint that does not fit")
def _(tmp):
    import torch

    run_dir = tmp / "run"
    run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault="checkpoint.pt:1:after:SIGKILL")
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    state["model"]["blocks.0.0.weight"] = torch.zeros(3, 3, 3, 3)
    torch.save(state, run_dir / "checkpoint.pt")
    again = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
    again2 = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp) if again.returncode else again
    ok = again.returncode == 0 and list(run_dir.glob("checkpoint.pt.corrupt-*")) and rows(run_dir) == 3
    return bool(ok), f"exit {again.returncode} then {again2.returncode}: {again.stderr.strip()[-120:]}"


@probe("planted os.system checkpoint")
def _(tmp):
    import torch

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp / 'ran'}",)

    run_dir = tmp / "run"
    run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault="checkpoint.pt:1:after:SIGKILL")
    torch.save({"epoch": 1, "model": Payload()}, run_dir / "checkpoint.pt")
    again = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
    log = (run_dir / "train.log").read_text()
    ok = (again.returncode == 0 and not (tmp / "ran").exists() and "refused" in log and "weights_only" not in log
          and "Re-running" not in log)
    return ok, f"exit {again.returncode}; advice to load unsafely in the log: {'weights_only' in log}"


@probe("multirun after the overrides")
def _(tmp):
    proc = run([*TINY, "trainer.epochs=1", "augment=none,mixup", "--multirun", f"hydra.sweep.dir={tmp / 's'}"], tmp)
    return proc.returncode == 0 and len(list((tmp / "s").glob("*/result.json"))) == 2, f"exit {proc.returncode}"


@probe("multirun between the overrides")
def _(tmp):
    proc = run([*TINY, "augment=none,mixup", "--multirun", "trainer.epochs=1", f"hydra.sweep.dir={tmp / 's'}"], tmp)
    return proc.returncode == 0 and len(list((tmp / "s").glob("*/result.json"))) == 2, f"exit {proc.returncode}"


# ------------------------------------------------------------------------------------------------ the groups of 2026-12-07
# A lock two processes take over, damaged checkpoints, caches fooled by kept dates, tracebacks, late refusals and
# what a kill leaves for the next command.


def _dead_pid() -> int:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return gone.pid


def _stale_lock(run_dir: Path) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.lock").write_text(json.dumps({"pid": _dead_pid(), "host": os.uname().nodename,
                                                   "invocation": "a dead one", "since": "yesterday"}))


def _one_trainer(run_dir: Path, procs) -> tuple[bool, str]:
    log = (run_dir / "train.log").read_text() if (run_dir / "train.log").exists() else ""
    trained = log.count("training simple_cnn")
    codes = [p.returncode for p in procs]
    errors = [p.stderr.strip().splitlines() for p in procs if p.returncode]
    ok = (trained == 1 and result(run_dir)["status"] == "ok" and 0 in codes and not (run_dir / "run.lock").exists()
          and all(len(e) == 1 and e[0].startswith("error: ") for e in errors))
    return ok, f"{trained} training line(s), exits {codes}"


def _two_takers(delayed: bool):
    def check(tmp: Path):
        run_dir = tmp / "run"
        _stale_lock(run_dir)
        args = [*TINY, "trainer.epochs=2", f"hydra.run.dir={run_dir}"]
        env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
        first = [sys.executable, "-m", "mixupexp.train", *args]
        if delayed:  # the first taker held 1 s at every rename, its lock's takeover among them
            first = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2",
                     "-e", "inject=rename,renameat,renameat2:delay_enter=1000000", *first]
        a = subprocess.Popen(first, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.5 if delayed else 0)
        b = subprocess.Popen([sys.executable, "-m", "mixupexp.train", *args], cwd=tmp, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for p in (a, b):
            p.stdout_text, p.stderr = p.communicate(timeout=300)
        return _one_trainer(run_dir, (a, b))
    return check


for _repeat in range(3):
    probe(f"lock stale, two takers at once #{_repeat + 1}")(_two_takers(delayed=False))
probe("lock stale, the first taker held at its renames")(_two_takers(delayed=True))


def _xor_members(path: Path, pick) -> None:
    """XOR 64 bytes in the middle of the chosen stored tensor records of a torch zip; the zip stays readable."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        members = [i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 64]
    data = bytearray(path.read_bytes())
    for info in pick(members):
        name_length, extra_length = int.from_bytes(data[info.header_offset + 26:info.header_offset + 28], "little"), \
            int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
        start = info.header_offset + 30 + name_length + extra_length + info.file_size // 2 - 32
        for k in range(start, start + 64):
            data[k] ^= 0xA5
    path.write_bytes(bytes(data))


def _damaged_checkpoint(pick):
    def check(tmp: Path):
        reference = _reference(tmp)
        run_dir = tmp / "run"
        run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp, fault="checkpoint.pt:2:after:SIGKILL")
        _xor_members(run_dir / "checkpoint.pt", pick)
        again = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
        log = (run_dir / "train.log").read_text()
        warned = [line for line in log.splitlines() if "WARNING" in line and "checkpoint" in line]
        ok = (again.returncode == 0 and warned and list(run_dir.glob("checkpoint.pt.corrupt-*"))
              and _metrics(run_dir) == reference["metrics"] and result(run_dir)["test_acc"] == reference["test_acc"])
        return bool(ok), f"exit {again.returncode}, {len(warned)} warning(s), test_acc {result(run_dir).get('test_acc')}"
    return check


probe("checkpoint damaged in its largest tensor record")(_damaged_checkpoint(
    lambda members: [max(members, key=lambda i: i.file_size)]))
probe("checkpoint damaged in its smallest tensor record")(_damaged_checkpoint(
    lambda members: [min(members, key=lambda i: i.file_size)]))
probe("checkpoint damaged in every tensor record")(_damaged_checkpoint(lambda members: members))


def _cache_fooled(change):
    def check(tmp: Path):
        root = make_folder(tmp / "set")
        run(folder_args(tmp, root), tmp)
        stale = {p.name for p in (tmp / "cache").glob("*.pt")}
        change(root)
        again = run([*FOLDER, f"data.root={root}", f"data.cache_dir={tmp / 'cache'}", f"hydra.run.dir={tmp / 'again'}"],
                    tmp)
        fresh = run([*FOLDER, f"data.root={root}", f"data.cache_dir={tmp / 'fresh'}", f"hydra.run.dir={tmp / 'fresh_run'}"],
                    tmp)
        log = (tmp / "again" / "train.log").read_text()
        read = [word.rsplit("/", 1)[-1] for word in log.split() if word.endswith(".pt") and "/cache/" in word]
        used_stale = bool(set(read) & stale)  # the cache written before the change, whose fingerprint still matched
        same = result(tmp / "again")["test_acc"] == result(tmp / "fresh_run")["test_acc"]
        ok = again.returncode == 0 and fresh.returncode == 0 and not used_stale and same
        return ok, f"read the cache written before the change: {used_stale}; same metrics as a fresh decode: {same}"
    return check


def _replace_pixels_keep_dates(root: Path) -> None:
    from PIL import Image

    for path in sorted((root / "test").rglob("*.png"))[:4]:
        stat = path.stat()
        Image.fromarray(np.full((16, 16, 3), 255, dtype=np.uint8)).save(path)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def _swap_between_classes(root: Path) -> None:
    a, b = root / "test" / "cat" / "0.png", root / "test" / "dog" / "0.png"
    times = [(p.stat().st_atime_ns, p.stat().st_mtime_ns) for p in (a, b)]
    data = a.read_bytes(), b.read_bytes()
    a.write_bytes(data[1]), b.write_bytes(data[0])
    os.utime(a, ns=times[0]), os.utime(b, ns=times[1])


probe("cache, pixels replaced with the dates kept")(_cache_fooled(_replace_pixels_keep_dates))
probe("cache, two images swapped between classes")(_cache_fooled(_swap_between_classes))


def _evaluate_planted(write):
    def check(tmp: Path):
        run_dir = _finished(tmp)
        write(run_dir / "model.pt", tmp)
        proc = run([str(run_dir)], tmp, module="mixupexp.evaluate")
        ok, detail = one_line(proc, 2)
        return ok and not (tmp / "ran").exists(), detail
    return check


def _pickle_payload(path: Path, tmp: Path) -> None:
    import torch

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {tmp / 'ran'}",)

    torch.save({"weight": Payload()}, path)


probe("evaluate a planted pickle as model.pt")(_evaluate_planted(_pickle_payload))
probe("evaluate a truncated model.pt")(_evaluate_planted(lambda path, tmp: path.write_bytes(path.read_bytes()[:500])))


TUNE = ["--multirun", "hydra/sweeper=tune", *TINY, "trainer.epochs=1", "data.val_size=64", "hydra.sweeper.n_trials=1",
        "hydra.sweeper.racing=false", "hydra.sweeper.seeds_per_trial=2", "augment=mixup", "augment.alpha=interval(0.1,0.5)",
        "hydra.sweeper.confirm.max_seeds=3"]


def _tune_over_damaged_db(damage):
    def check(tmp: Path):
        sweep = tmp / "study"
        first = run([*TUNE, f"hydra.sweep.dir={sweep}"], tmp)
        if not (sweep / "study.db").exists():
            raise RuntimeError(f"set-up study failed: exit {first.returncode} {first.stderr.strip()[-200:]}")
        damage(sweep / "study.db")
        before = snapshot(sweep)
        proc = run([*TUNE, f"hydra.sweep.dir={sweep}"], tmp)
        ok, detail = one_line(proc, 2)
        return ok and "study.db" in proc.stderr and snapshot(sweep) == before, detail
    return check


def _garble_start(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:64] = bytes(b ^ 0xFF for b in data[:64])
    path.write_bytes(bytes(data))


probe("tune over a truncated study.db")(_tune_over_damaged_db(lambda p: p.write_bytes(p.read_bytes()[:3000])))
probe("tune over a study.db with garbled first bytes")(_tune_over_damaged_db(_garble_start))


@probe("summarize a read-only sweep directory")
def _(tmp):
    target = _mounted(tmp, "size=8m")
    if target is None:
        return None, "skipped: cannot mount a tmpfs here"
    try:
        sweep = target / "sweep"
        done = run(["--multirun", *TINY, "trainer.epochs=1", "seed=0,1", "eval.fgsm_eps=[]", f"hydra.sweep.dir={sweep}"],
                   tmp)
        if done.returncode:
            raise RuntimeError(done.stderr[-200:])
        subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True, capture_output=True)
        before = snapshot(sweep)
        proc = run([str(sweep), "--no-plots"], tmp, module="mixupexp.summarize")
        ok, detail = one_line(proc, 2)
        return ok and snapshot(sweep) == before, detail
    finally:
        _unmount(target)


LIMITS = {"data.num_train=1000000000000": "data.num_train", "data.image_size=100000": "data.image_size",
          "trainer.threads=100000": "trainer.threads", "trainer.epochs=1000000000000": "trainer.epochs"}
for _override, _key in LIMITS.items():
    probe(f"limit {_override}")(_bad_value(_override, _key))


@probe("limit hydra.sweeper.first_seed=4294967295")
def _(tmp):
    proc = run(["--multirun", "hydra/sweeper=sequential", "augment=none,mixup", *TINY, "trainer.epochs=1",
                "hydra.sweeper.first_seed=4294967295", f"hydra.sweep.dir={tmp / 's'}"], tmp)
    ok, detail = one_line(proc, 2)
    return ok and "first_seed" in proc.stderr and not (tmp / "s").exists(), detail


def _refused_before_writing(make, *extra: str):
    def check(tmp: Path):
        root = make(tmp)
        proc = run(folder_args(tmp, root, *extra), tmp)
        ok, detail = one_line(proc, 2)
        written = [p.name for p in (tmp / "run").rglob("*")] if (tmp / "run").exists() else []
        return ok and not written, detail + (f"; written: {written}" if written else "")
    return check


def _corrupt_jpeg(tmp: Path) -> Path:
    from PIL import Image

    root = make_folder(tmp / "set")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(root / "train" / "cat" / "x.jpg")
    path = root / "train" / "cat" / "x.jpg"
    path.write_bytes(path.read_bytes()[:40])
    return root


def _text_named_png(tmp: Path) -> Path:
    root = make_folder(tmp / "set")
    (root / "train" / "dog" / "notes.png").write_text("not an image")
    return root


def _mixed_sizes(tmp: Path) -> Path:
    from PIL import Image

    root = make_folder(tmp / "set")
    Image.fromarray(np.zeros((20, 24, 3), dtype=np.uint8)).save(root / "train" / "dog" / "big.png")
    return root


probe("before writing: a corrupt JPEG")(_refused_before_writing(_corrupt_jpeg))
probe("before writing: a text file named .png")(_refused_before_writing(_text_named_png))
probe("before writing: mixed sizes without data.image_size")(_refused_before_writing(_mixed_sizes))
probe("before writing: trainer.batch_size larger than the data")(_refused_before_writing(
    lambda tmp: make_folder(tmp / "set"), "trainer.batch_size=1000"))


@probe("kill between result.json ok and the checkpoint's removal")
def _(tmp):
    run_dir = tmp / "run"
    run([*EPOCHS3, "trainer.keep_checkpoint=false", f"hydra.run.dir={run_dir}"], tmp, fault="result.json:2:after:SIGKILL")
    left = (run_dir / "checkpoint.pt").exists()
    again = run([*EPOCHS3, f"hydra.run.dir={run_dir}"], tmp)
    ok = left and again.returncode == 0 and not (run_dir / "checkpoint.pt").exists() and result(run_dir)["status"] == "ok"
    return ok, f"checkpoint left by the kill: {left}; after the next command: {(run_dir / 'checkpoint.pt').exists()}"


def _sweep_state_killed(name: str, args: list[str]):
    def check(tmp: Path):
        sweep = tmp / "sweep"
        command = [*args, f"hydra.sweep.dir={sweep}"]
        killed = run(command, tmp, fault=f"{name}:1:during:SIGKILL")
        left = [p.name for p in sweep.rglob(".*.tmp")]
        again = run(command, tmp)
        after = [p.name for p in sweep.rglob(".*.tmp")]
        ok = killed.returncode == -signal.SIGKILL and bool(left) and again.returncode in (0, 1) and not after
        return ok, f"killed: {killed.returncode}; temporary files then {left}, after the rerun {after}"
    return check


SEQUENTIAL = ["--multirun", "hydra/sweeper=sequential", "augment=none,mixup", *TINY, "trainer.epochs=1",
              "hydra.sweeper.max_seeds=4"]
probe("kill during sequential.json, then the same command")(_sweep_state_killed("sequential.json", SEQUENTIAL))
probe("kill during summary.csv, then the same command")(_sweep_state_killed(
    "summary.csv", ["--multirun", *TINY, "trainer.epochs=1", "seed=0,1"]))
probe("kill during tune.json, then the same command")(_sweep_state_killed("tune.json", TUNE))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", help="run the probes whose name starts with this (repeatable)")
    parser.add_argument("--list", action="store_true", help="list the probes")
    args = parser.parse_args()
    names = [n for n in PROBES if not args.only or any(n.startswith(p) for p in args.only)]
    if args.list:
        print("\n".join(names))
        return 0
    counts = {"clean": 0, "not clean": 0, "skipped": 0}
    with tempfile.TemporaryDirectory() as shared:
        for name in names:
            tmp = Path(tempfile.mkdtemp(dir=shared))
            started = time.perf_counter()
            try:
                clean, detail = PROBES[name](tmp)
            except Exception as e:  # the probe's own set-up failed: count it, say why
                clean, detail = False, f"probe failed: {type(e).__name__}: {e}"
            kind = "skipped" if clean is None else "clean" if clean else "not clean"
            counts[kind] += 1
            print(f"{kind:9}  {name:45}  {time.perf_counter() - started:5.1f} s  {detail}", flush=True)
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(names)} probes: {counts['clean']} clean, {counts['not clean']} not clean, {counts['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
