"""The step/epoch engine: one optimisation step (eager or replayed from a CUDA graph) and one pass over the
training batches, shared by `python -m mixupexp.train` and the benchmark."""

from __future__ import annotations

import logging

import torch
from tqdm import tqdm

from mixupexp.augment.batch import BatchMixer, HiddenMixer
from mixupexp.training.loss import soft_cross_entropy

log = logging.getLogger("mixupexp")


def cpu_computes_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): there bf16 autocast roughly halves the
    time of a convolution step; elsewhere it is emulated and slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def autocast_dtype(precision: str, device: torch.device):
    """The autocast dtype of training (None = fp32): `auto` is bf16 on CUDA (tensor cores) and on CPUs that
    compute bf16 natively, fp32 elsewhere. Evaluation is always fp32 (evaluation.py)."""
    if precision == "bf16":
        return torch.bfloat16
    if precision == "auto" and (device.type == "cuda" or (device.type == "cpu" and cpu_computes_bf16())):
        return torch.bfloat16
    return None


class TrainStep:
    """One optimisation step: forward, soft-target loss, backward, update; returns the loss on the device.

    With `graph=True` (CUDA only) the whole step is captured once in a CUDA graph and replayed for every batch:
    the default CNN's 391 small steps per epoch are bound by kernel launches, and a replay is one launch.
    Capture needs a few warm-up steps; afterwards model and optimizer are put back exactly as they were (fresh
    or resumed from a checkpoint), so the trained weights do not depend on whether a graph was used.
    """

    def __init__(self, model, optimizer, amp_dtype, device: torch.device, hidden_mixer: HiddenMixer | None = None,
                 graph: bool = False):
        self.model, self.optimizer, self.amp_dtype, self.device = model, optimizer, amp_dtype, device
        self.hidden_mixer = hidden_mixer
        self.capture_pending = graph  # captured on the first batch, whose shapes every later batch shares
        self.graph = None

    def forward_loss(self, x, y, cache_enabled: bool = True) -> torch.Tensor:
        """The forward pass and the loss of the step (what profile.step_stages times as `forward`)."""
        # Manifold mixup draws its block per batch here, on the host: such a step must not be captured.
        mix = self.hidden_mixer.draw(len(y), y.device) if self.hidden_mixer is not None else None
        if mix is not None:
            y = mix(y)
        with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                            enabled=self.amp_dtype is not None, cache_enabled=cache_enabled):
            return soft_cross_entropy(self.model(x, mix=mix), y)

    def _forward_backward(self, x, y, cache_enabled: bool = True):
        loss = self.forward_loss(x, y, cache_enabled)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.capture_pending:
            self.capture_pending = False
            self.capture(x, y)
        if self.graph is not None:
            self.static_x.copy_(x)
            self.static_y.copy_(y)
            self.graph.replay()
            return self.static_loss.clone()
        self.optimizer.zero_grad(set_to_none=True)
        return self._forward_backward(x, y)

    def capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Capture the step on batches shaped like (x, y); on failure stay eager and say why. Model and optimizer
        are left exactly as they were before (the warm-up and the capture itself both update them)."""
        before = snapshot_state(self.model, self.optimizer)
        self.static_x, self.static_y = x.clone(), y.clone()
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(3):
                    self.optimizer.zero_grad(set_to_none=True)
                    self._forward_backward(self.static_x, self.static_y, cache_enabled=False)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            self.optimizer.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                self.static_loss = self._forward_backward(self.static_x, self.static_y, cache_enabled=False)
            self.graph = graph
        except RuntimeError as e:
            log.warning("CUDA graph capture failed, training eagerly: %s", str(e).splitlines()[0])
            self.graph = None
        restore_state(before, self.model, self.optimizer)


def snapshot_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """A copy of what an optimisation step changes: the model's parameters and buffers (BatchNorm statistics
    included) and the optimizer's per-parameter state (moments, step counts)."""
    return {
        "model": {name: value.detach().clone() for name, value in model.state_dict().items()},
        "optimizer": {
            param: {key: value.detach().clone() if torch.is_tensor(value) else value for key, value in state.items()}
            for param, state in optimizer.state.items()
        },
    }


def restore_state(snapshot: dict, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Put model and optimizer back as they were at `snapshot`, in place: a captured CUDA graph goes on reading
    and writing these very tensors. Optimizer state created after the snapshot is zeroed, which acts as the
    initial state of Adam and of SGD without dampening (no moments, step 0), the optimizers `train` builds: a
    fresh run stays as fresh as one that never warmed up."""
    with torch.no_grad():
        for name, value in model.state_dict().items():
            value.copy_(snapshot["model"][name])
        for param, state in optimizer.state.items():
            saved = snapshot["optimizer"].get(param, {})
            for key, value in state.items():
                if torch.is_tensor(value):
                    if torch.is_tensor(saved.get(key)):
                        value.copy_(saved[key])
                    else:
                        value.zero_()
                elif key in saved:
                    state[key] = saved[key]


class DivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def check_finite(loss_sum: torch.Tensor, where: str) -> None:
    if not torch.isfinite(loss_sum).item():
        raise DivergedError(f"training loss became {loss_sum.item()} in {where}")


def train_epoch(step: TrainStep, batches, batch_mixer: BatchMixer, device: torch.device, name: str,
                progress: bool = False) -> float:
    """One pass over `batches` (the whole training path of `train`, also what the benchmark times); returns
    the mean training loss. Raises DivergedError if the loss is not finite: at once on the CPU, at the end of
    the epoch on a GPU, so that nothing inside the epoch waits for the device."""
    # Reading the loss inside the epoch would make the host wait for the GPU at every check, so on a GPU it is
    # checked once the epoch is done; on the CPU, where nothing waits, after every step.
    check_every_step = device.type == "cpu"
    loss_sum = torch.zeros((), device=device)
    num_samples = 0
    for x, y in tqdm(batches, desc=name, leave=False, disable=not progress):
        x, y = batch_mixer(x.to(device, non_blocking=True), y.to(device, non_blocking=True))
        loss_sum += step(x.contiguous(memory_format=torch.channels_last), y) * len(y)
        num_samples += len(y)
        if check_every_step:
            check_finite(loss_sum, name)
    check_finite(loss_sum, name)
    return loss_sum.item() / max(num_samples, 1)
