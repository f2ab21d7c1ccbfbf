"""Batch-level mixing methods and label smoothing, one small unit per concept.

The study's per-sample mixup lives in `augment/mixup.py` and `augment/loaders.py`; the methods here act on a whole drawn batch of
(images in [0, 1], soft labels), on the batch's device, with one lambda per batch and the partner of sample i
being sample perm[i] of the same batch:

- `mix_with_permutation`: lam * t + (1 - lam) * t[perm], for images, labels or hidden states alike.
- `cutmix_box`: the box CutMix pastes for a given lambda, and lambda corrected to the box's exact area.
- `cutmix`: paste that box from the partners and mix the labels with the corrected lambda.
- `smooth_labels`: (1 - eps) * y + eps / K.
- `mixup_batch`, `cutmix_batch`: the two batch-level methods, (x, y, lam, perm) -> (x, y).
- `BatchMixer`: one of them with probability `ratio` per batch, then label smoothing; applied to every training
  batch after it is drawn, in both loader paths.
- `HiddenMix` / `HiddenMixer`: manifold mixup's per-batch plan (after how many blocks to mix, lambda, perm),
  which the model applies to its hidden state (`BlockNetwork.forward(x, mix=...)`) and the step to the labels.

Per-batch choices (whether to mix, lambda, the box) are drawn with the CPU generator so that nothing waits for
the device; the permutation is drawn on the batch's device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from mixupexp.augment.mixup import sample_lambda


def mix_with_permutation(t: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """lam * t + (1 - lam) * t[perm]: every sample mixed with its partner in the same batch."""
    return lam * t + (1 - lam) * t[perm]


def cutmix_box(lam: float, height: int, width: int) -> tuple[tuple[int, int, int, int], float]:
    """A box of about (1 - lam) of the image, centred uniformly at random and clipped to the image, as
    (top, bottom, left, right), and lambda corrected so that 1 - lambda is the box's exact share of the area."""
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * cut), int(width * cut)
    cy, cx = int(torch.randint(height, ())), int(torch.randint(width, ()))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    return (top, bottom, left, right), 1.0 - (bottom - top) * (right - left) / (height * width)


def cutmix(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor):
    """CutMix of a batch: a box of area (1 - lam) pasted from each sample's partner; returns (x, y, corrected
    lambda), the labels mixed with the corrected lambda."""
    (top, bottom, left, right), lam = cutmix_box(lam, x.shape[-2], x.shape[-1])
    x = x.clone()
    x[..., top:bottom, left:right] = x[..., top:bottom, left:right][perm]
    return x, mix_with_permutation(y, lam, perm), lam


def smooth_labels(y: torch.Tensor, eps: float) -> torch.Tensor:
    """Label smoothing of soft labels: (1 - eps) * y + eps / K, still summing to 1."""
    return (1 - eps) * y + eps / y.shape[-1]


def _draw_batch_mixing(alpha: float, ratio: float, batch_size: int, device) -> tuple[float, torch.Tensor] | None:
    """With probability `ratio`: lambda ~ Beta(alpha, alpha) and a random permutation of the batch; else None."""
    if not float(torch.rand(())) < ratio:
        return None
    return float(sample_lambda(alpha)), torch.randperm(batch_size, device=device)


def mixup_batch(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor):
    """Batch-level mixup: images and labels mixed with the same lambda and partners."""
    return mix_with_permutation(x, lam, perm), mix_with_permutation(y, lam, perm)


def cutmix_batch(x: torch.Tensor, y: torch.Tensor, lam: float, perm: torch.Tensor):
    """CutMix of a batch, without the corrected lambda (the labels already carry it)."""
    x, y, _ = cutmix(x, y, lam, perm)
    return x, y


# A batch-level method: (images, soft labels, lambda, partners) -> (images, soft labels).
BatchMix = Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class BatchMixer:
    """What happens to every drawn training batch: a batch-level method (`mix`: mixup_batch, cutmix_batch) with
    probability `ratio` per batch, or none; then label smoothing (every method, `none` included)."""

    def __init__(self, mix: BatchMix | None, alpha: float, ratio: float, label_smoothing: float = 0.0):
        self.mix, self.alpha, self.ratio, self.label_smoothing = mix, alpha, ratio, label_smoothing

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mix is not None:
            drawn = _draw_batch_mixing(self.alpha, self.ratio, len(y), y.device)
            if drawn is not None:
                x, y = self.mix(x, y, *drawn)
        if self.label_smoothing > 0:
            y = smooth_labels(y, self.label_smoothing)
        return x, y


@dataclass
class HiddenMix:
    """Manifold mixup's plan for one batch: mix the hidden state after `after_blocks` of the model's blocks
    (0 = the input) with lambda `lam` and partners `perm`; calling it mixes any batch-leading tensor, so the
    same plan mixes the hidden state and the labels."""

    after_blocks: int
    lam: float
    perm: torch.Tensor

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        return mix_with_permutation(t, self.lam, self.perm)


class HiddenMixer:
    """`augment=manifold_mixup`: with probability `ratio` per batch, a `HiddenMix` at a block drawn uniformly
    from `after_blocks`."""

    def __init__(self, alpha: float, ratio: float, after_blocks):
        self.alpha, self.ratio, self.after_blocks = alpha, ratio, list(after_blocks)

    def draw(self, batch_size: int, device) -> HiddenMix | None:
        drawn = _draw_batch_mixing(self.alpha, self.ratio, batch_size, device)
        if drawn is None:
            return None
        return HiddenMix(self.after_blocks[int(torch.randint(len(self.after_blocks), ()))], *drawn)
