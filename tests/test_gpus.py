"""One GPU per job: the lease logic, with the GPU count simulated (no GPU needed)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from mixupexp.records.gpus import gpu_lease, parallel_jobs
from mixupexp.records.lock import LOCK


def test_concurrent_jobs_get_distinct_gpus_and_give_them_back(tmp_path):
    with gpu_lease(4, tmp_path) as first, gpu_lease(4, tmp_path) as second, gpu_lease(4, tmp_path) as third:
        assert (first, second, third) == (0, 1, 2)
    with gpu_lease(4, tmp_path) as again:  # all given back
        assert again == 0


def test_a_gpu_held_by_another_live_job_is_skipped_and_a_dead_ones_lease_taken_over(tmp_path):
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    try:
        for index, pid in ((0, other.pid), (1, int(dead.stdout))):
            (tmp_path / f"gpu{index}").mkdir()
            (tmp_path / f"gpu{index}" / LOCK).write_text(json.dumps(
                {"pid": pid, "host": os.uname().nodename, "invocation": "another sweep", "since": "now"}))
        with gpu_lease(2, tmp_path) as index:
            assert index == 1  # gpu0 is busy; gpu1's holder is gone
    finally:
        other.kill()
        other.wait()


def test_more_jobs_than_gpus_share_the_least_used_one(tmp_path):
    with gpu_lease(2, tmp_path) as a, gpu_lease(2, tmp_path) as b:
        assert (a, b) == (0, 1)
        with gpu_lease(2, tmp_path) as c:
            assert c == 0
            with gpu_lease(2, tmp_path) as d:
                assert d == 1  # gpu0 already has a sharer


def test_each_job_trains_on_its_leased_gpu(monkeypatch, tmp_path):
    import mixupexp.records.gpus
    from mixupexp.training.device import training_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(mixupexp.records.gpus, "lease_dir", lambda: tmp_path)
    with training_device("auto") as first, training_device("cuda") as second:
        assert (first, second) == (torch.device("cuda", 0), torch.device("cuda", 1)) and chosen == [0, 1]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with training_device("auto") as only:
        assert only == torch.device("cuda")  # one GPU: no lease, every job on it


@pytest.mark.parametrize("count,jobs", [(0, len(os.sched_getaffinity(0))), (1, 4), (2, 2), (8, 8)])
def test_parallel_launcher_runs_one_job_per_gpu_or_per_core(monkeypatch, count, jobs):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    assert parallel_jobs() == jobs
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from mixupexp.config.compose import compose_config

    cfg = compose_config(["hydra/launcher=parallel"], return_hydra_config=True)
    assert cfg.hydra.launcher.n_jobs == jobs
