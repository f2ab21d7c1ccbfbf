"""The training step: CUDA-graph capture leaves model and optimizer as they were, fresh or resumed; the faster
CPU step (pooling before ReLU, fused Adam) computes the same step as the plain one.

The CUDA calls of the capture are replaced by stand-ins that run the same Python code eagerly on the CPU:
the warm-up steps and the captured step then really update the model and the optimizer, as they do on a GPU.
"""

import contextlib
import copy

import pytest
import torch

from mixupexp.models.networks import SimpleCNN
from mixupexp.training.loss import soft_cross_entropy
from mixupexp.training.engine import TrainStep, restore_state, snapshot_state


class _Stream:
    def wait_stream(self, other):
        pass


class _Graph:
    def replay(self):  # the stand-in records nothing, so a replay does nothing
        pass


@pytest.fixture
def cuda_calls_run_eagerly(monkeypatch):
    monkeypatch.setattr(torch.cuda, "Stream", _Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _Stream())
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _Graph)
    monkeypatch.setattr(torch.cuda, "graph", lambda graph, **kwargs: contextlib.nullcontext())


def _model(seed=0):
    torch.manual_seed(seed)
    return SimpleCNN(4, (3, 8, 8), torch.full((3,), 0.5), torch.full((3,), 0.25), widths=(4, 8, 8), hidden=16)


def _batch(seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(16, 3, 8, 8, generator=generator)
    y = torch.nn.functional.one_hot(torch.randint(4, (16,), generator=generator), 4).float()
    return x, y


def _train(step, batches):
    for seed in batches:
        step(*_batch(seed))


def _assert_same_state(a: dict, b: dict):
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert len(a["optimizer"]) == len(b["optimizer"])
    for state_a, state_b in zip(a["optimizer"].values(), b["optimizer"].values()):
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            assert torch.equal(torch.as_tensor(state_a[key]), torch.as_tensor(state_b[key])), key


def _resumed(optimizer_name):
    """Model and optimizer after 5 steps, saved and loaded into new ones, as a resumed run has them."""
    model = _model()
    make = {"adam": lambda p: torch.optim.Adam(p, lr=1e-2),
            "sgd": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)}[optimizer_name]
    optimizer = make(model.parameters())
    _train(TrainStep(model, optimizer, None, torch.device("cpu")), range(5))
    model_state, optimizer_state = model.state_dict(), optimizer.state_dict()
    resumed_model = _model(seed=1)
    resumed_model.load_state_dict(model_state)
    resumed_optimizer = make(resumed_model.parameters())
    resumed_optimizer.load_state_dict(optimizer_state)
    return resumed_model, resumed_optimizer


@pytest.mark.parametrize("optimizer_name", ["adam", "sgd"])
def test_capture_leaves_a_resumed_model_and_optimizer_as_they_were(cuda_calls_run_eagerly, optimizer_name):
    model, optimizer = _resumed(optimizer_name)
    assert optimizer.state  # moments and step counts loaded from the checkpoint
    before = snapshot_state(model, optimizer)
    step = TrainStep(model, optimizer, None, torch.device("cpu"), graph=True)
    step(*_batch(5))  # captured on the first batch; the stand-in graph's replay does nothing
    assert step.graph is not None
    _assert_same_state(snapshot_state(model, optimizer), before)

    # So the first update after a resume is the one an uninterrupted run makes.
    step.graph = None
    step(*_batch(5))
    reference_model, reference_optimizer = _resumed(optimizer_name)
    TrainStep(reference_model, reference_optimizer, None, torch.device("cpu"))(*_batch(5))
    _assert_same_state(snapshot_state(model, optimizer), snapshot_state(reference_model, reference_optimizer))


def test_capture_of_a_fresh_run_leaves_the_optimizer_as_fresh(cuda_calls_run_eagerly):
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = TrainStep(model, optimizer, None, torch.device("cpu"), graph=True)
    _train(step, [0])  # captured on the first batch; the stand-in graph's replay does nothing
    step.graph = None
    _train(step, range(1, 4))
    reference_model = _model()
    reference_optimizer = torch.optim.Adam(reference_model.parameters(), lr=1e-2)
    _train(TrainStep(reference_model, reference_optimizer, None, torch.device("cpu")), range(1, 4))
    _assert_same_state(snapshot_state(model, optimizer), snapshot_state(reference_model, reference_optimizer))


def test_restore_puts_values_back_into_the_same_tensors():
    model = _model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    step = TrainStep(model, optimizer, None, torch.device("cpu"))
    _train(step, [0])
    snapshot = snapshot_state(model, optimizer)
    tensors = [*model.state_dict().values(), *(v for s in optimizer.state.values() for v in s.values())]
    addresses = [t.data_ptr() for t in tensors]
    _train(step, [1, 2])
    restore_state(snapshot, model, optimizer)
    _assert_same_state(snapshot_state(model, optimizer), snapshot)
    tensors = [*model.state_dict().values(), *(v for s in optimizer.state.values() for v in s.values())]
    assert [t.data_ptr() for t in tensors] == addresses  # what a captured graph reads and writes


@pytest.mark.parametrize("native, device, precision, expected", [
    (True, "cpu", "auto", torch.bfloat16),  # AVX512-BF16 / AMX: bf16 is faster there
    (False, "cpu", "auto", None),  # emulated bf16 would be slower than fp32
    (False, "cuda", "auto", torch.bfloat16),
    (True, "cpu", "fp32", None),
    (False, "cpu", "bf16", torch.bfloat16),
])
def test_auto_precision_is_bf16_where_the_hardware_computes_it(monkeypatch, native, device, precision, expected):
    from mixupexp.training.engine import autocast_dtype

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert autocast_dtype(precision, torch.device(device)) == expected


# ---- The faster step computes the same step as the plain one -----------------------------------------------------

def _plain_order_block(block):
    """The block as conv -> BatchNorm -> ReLU -> max-pool, sharing the block's modules (so its parameters)."""
    conv, bn, pool, relu = block
    return torch.nn.Sequential(conv, bn, relu, pool)


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
def test_pooling_before_relu_is_the_same_step_bit_for_bit(memory_format):
    """conv_block pools before its ReLU: the same outputs, gradients and BatchNorm statistics, bit for bit."""
    fast = SimpleCNN(10, (3, 32, 32), torch.full((3,), 0.5), torch.full((3,), 0.25)).to(memory_format=memory_format)
    torch.manual_seed(3)
    for p in fast.parameters():  # BatchNorm's weights drawn too, negative ones included
        p.data.normal_(0, 0.5)
    plain = copy.deepcopy(fast)
    plain.blocks = torch.nn.ModuleList(_plain_order_block(block) for block in plain.blocks)
    assert [type(m) for m in fast.blocks[0]] == [torch.nn.Conv2d, torch.nn.BatchNorm2d, torch.nn.MaxPool2d,
                                                  torch.nn.ReLU]
    generator = torch.Generator().manual_seed(4)
    x = torch.rand(32, 3, 32, 32, generator=generator).contiguous(memory_format=memory_format)
    y = torch.eye(10)[torch.randint(10, (32,), generator=generator)]
    losses = []
    for model in (fast, plain):
        model.zero_grad()
        loss = soft_cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss)
    assert torch.equal(losses[0], losses[1])
    for (name, a), b in zip(fast.named_parameters(), plain.parameters()):
        assert torch.equal(a.grad, b.grad), name
    for (name, a), b in zip(fast.named_buffers(), plain.buffers()):
        assert torch.equal(a, b), name
    fast.eval(), plain.eval()
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x))


@pytest.mark.parametrize("weight_decay", [0.0, 5e-4])
def test_fused_adam_is_the_same_update_as_the_plain_one(weight_decay):
    """build_optimizer's Adam on the CPU is the fused kernel; 5 steps of it match torch's plain Adam to rounding."""
    from types import SimpleNamespace

    from mixupexp.training.optim import build_optimizer

    cfg = SimpleNamespace(name="adam", lr=1e-2, weight_decay=weight_decay)
    fused_model, plain_model = _model(), _model()
    fused = build_optimizer(cfg, fused_model.parameters(), torch.device("cpu"))
    plain = torch.optim.Adam(plain_model.parameters(), lr=1e-2, weight_decay=weight_decay, foreach=False)
    assert fused.defaults["fused"]
    _train(TrainStep(fused_model, fused, None, torch.device("cpu")), range(5))
    _train(TrainStep(plain_model, plain, None, torch.device("cpu")), range(5))
    for (name, a), b in zip(fused_model.state_dict().items(), plain_model.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    for state_a, state_b in zip(fused.state.values(), plain.state.values()):
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.allclose(state_a[key], state_b[key], rtol=1e-4, atol=1e-9), key
    # A checkpoint of either loads into the other (runs resumed across versions keep their moments).
    reloaded = build_optimizer(cfg, plain_model.parameters(), torch.device("cpu"))
    reloaded.load_state_dict(plain.state_dict())
    _train(TrainStep(plain_model, reloaded, None, torch.device("cpu")), [6])
