"""Tests that need a CUDA GPU (`python -m pytest -m gpu`); every one is skipped where CUDA is not available.

They cover what only a GPU runs: CUDA-graph capture and replay, fused Adam, bf16 autocast, and the promise
that nothing inside an epoch makes the host wait for the device.
"""

import json
import logging
import math

import pandas as pd
import pytest
import torch

from mixupexp.augment.methods import build_augmentation
from mixupexp.data.datasets import load_data
from mixupexp.models.networks import build_model
from mixupexp.records.checkpoint import CHECKPOINT, read_checkpoint
from mixupexp.training.engine import TrainStep, train_epoch
from mixupexp.training.optim import build_optimizer
from mixupexp.training.run import make_batches, train

from .conftest import TINY, compose_config, run_cli
from .test_reliability import Killed, interrupt_after_checkpoint

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

CUDA = torch.device("cuda")


@pytest.fixture
def deterministic_cudnn():
    saved = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved


def training_parts(overrides=(), graph=False, amp_dtype=None):
    """The pieces `train` assembles, on the GPU, from TINY settings plus `overrides`."""
    cfg = compose_config([*TINY, *overrides])
    torch.manual_seed(cfg.seed)
    data = load_data(cfg.data)
    mean, std = data.channel_stats()
    model = build_model(cfg.model, data.num_classes, tuple(data.train_images.shape[1:]), mean, std)
    model = model.to(CUDA, memory_format=torch.channels_last)
    optimizer = build_optimizer(cfg.optimizer, model.parameters(), CUDA)
    augmentation = build_augmentation(cfg.augment)
    batches = make_batches(cfg, data, "device", CUDA, augmentation.sample)  # as train() makes them
    step = TrainStep(model, optimizer, amp_dtype, CUDA, augmentation.hidden, graph=graph)
    return step, batches, augmentation.batch


def step_losses(graph: bool, steps: int) -> torch.Tensor:
    step, batches, _ = training_parts(["data.num_train=1024", "augment=mixup"], graph=graph)
    losses = []
    while len(losses) < steps:
        losses += [step(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]
    assert (step.graph is not None) == graph
    return torch.stack(losses[:steps]).cpu()


def test_graph_and_eager_steps_give_the_same_losses(deterministic_cudnn):
    graph, eager = step_losses(True, 320), step_losses(False, 320)
    torch.testing.assert_close(graph[:20], eager[:20], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(graph, eager, rtol=2e-2, atol=2e-2)


def test_resumed_graph_run_equals_an_uninterrupted_one(tmp_path, monkeypatch, caplog, deterministic_cudnn):
    cfg = compose_config([*TINY, "trainer.epochs=3", "augment=mixup", "trainer.device=cuda",
                          "trainer.precision=fp32", "trainer.keep_checkpoint=true"])
    with caplog.at_level(logging.WARNING, logger="mixupexp"):
        train(cfg, tmp_path / "whole")
        with monkeypatch.context() as m:
            interrupt_after_checkpoint(m, epoch=2)
            with pytest.raises(Killed):
                train(cfg, tmp_path / "resumed")
        train(cfg, tmp_path / "resumed")
    assert not [r for r in caplog.records if "capture failed" in r.getMessage()]  # both ran as CUDA graphs
    whole, resumed = (read_checkpoint(tmp_path / run / CHECKPOINT) for run in ("whole", "resumed"))
    # The optimizer's step counts survive the resume (a capture that reset them would leave 4 of 12 here).
    for a, b in zip(whole["optimizer"]["state"].values(), resumed["optimizer"]["state"].values()):
        assert a["step"].item() == b["step"].item() == 12
    for name, value in whole["model"].items():
        torch.testing.assert_close(resumed["model"][name], value, rtol=1e-3, atol=1e-4, msg=name)
    metrics = [pd.read_csv(tmp_path / run / "metrics.csv") for run in ("whole", "resumed")]
    pd.testing.assert_series_equal(metrics[0]["train_loss"], metrics[1]["train_loss"], rtol=1e-3)


def test_bf16_autocast_trains(tmp_path):
    cfg = compose_config(["data=synthetic", "trainer.epochs=3", "trainer.progress=off", "trainer.device=cuda",
                          "trainer.precision=bf16", "augment=mixup"])
    result = train(cfg, tmp_path)
    assert result["status"] == "ok" and result["test_acc"] > 40.0  # chance is 10 %


@pytest.fixture(autouse=True)
def no_sync_check_left_on():
    yield  # a test that failed inside a checked epoch leaves its generator, and the check, open
    torch.cuda.set_sync_debug_mode("default")


def sync_checked(batches):
    """The batches of one epoch, with every host synchronisation an error from the first batch to the last
    step (the epoch's closing read of its mean loss comes after)."""
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield from batches
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("augment,graph", [
    ("mixup", True), ("mixup", False), ("mixup_batch", True), ("cutmix", True), ("manifold_mixup", False),
])
def test_no_host_sync_inside_an_epoch(augment, graph):
    step, batches, batch_mixer = training_parts(
        [f"augment={augment}", "augment.ratio=0.5", "augment.label_smoothing=0.1"], graph=graph,
        amp_dtype=torch.bfloat16)
    train_epoch(step, batches, batch_mixer, CUDA, "warm-up")  # capture and first calls, which may sync
    assert (step.graph is not None) == graph
    loss = train_epoch(step, sync_checked(batches), batch_mixer, CUDA, "checked")
    assert math.isfinite(loss)  # read after the epoch


def test_the_sync_check_catches_a_sync():
    with pytest.raises(RuntimeError):
        for x in sync_checked([torch.ones(1, device=CUDA)]):
            x.item()


def test_seed_study_preset_end_to_end(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["+experiment=seed_study", *TINY, "trainer.device=cuda", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    results = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]
    assert len(results) == 6 and all(r["status"] == "ok" for r in results)
    assert all(r["device"] == torch.cuda.get_device_name() for r in results)
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary.set_index("augment")["n"].to_dict() == {"none": 3, "mixup": 3}
