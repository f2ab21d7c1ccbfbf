"""The study's mixup, one small unit per concept.

- `sample_lambda`: lambda ~ Beta(alpha, alpha).
- `draw_mixing`: for each draw of a training sample, whether it is mixed (probability `ratio`), its partner
  (uniform over the whole training set) and its lambda (1 when not mixed).
- `mixup_pair`: the per-sample math, lam * (x_i, y_i) + (1 - lam) * (x_j, y_j), for one sample or a batch.

The per-sample `MixupDataset` (the study's way) and the vectorised device batches (mixupexp's fast way) both use
these functions, so they draw from the same distribution. Both take an optional `image_transform` (standard
augmentation of a uint8 N×C×H×W batch, e.g. `random_crop_flip`) applied to every image, partners included,
before it is mixed.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def sample_lambda(alpha: float, shape: tuple[int, ...] = (), device=None) -> torch.Tensor:
    """Mixing weights lambda ~ Beta(alpha, alpha), in [0, 1].

    Drawn as the first coordinate of a Dirichlet(alpha, alpha) sample, which is how torch.distributions.Beta
    draws (the same numbers for the same generator state), but without a distribution object per call: its
    argument checks read values back from the device, a host sync at every step.
    """
    return torch._sample_dirichlet(torch.full((*shape, 2), float(alpha), device=device))[..., 0]


def draw_mixing(
    shape: tuple[int, ...], num_items: int, ratio: float, alpha: float, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Partners and lambdas for `shape` draws: mixed with probability `ratio`, partner uniform over
    `num_items`, lambda ~ Beta(alpha, alpha) when mixed and exactly 1 (the sample itself) otherwise."""
    mixed = torch.rand(shape, device=device) < ratio
    lam = torch.where(mixed, sample_lambda(alpha, shape, device), torch.ones((), device=device))
    partner = torch.randint(num_items, shape, device=device)
    return partner, lam


def mixup_pair(x_i, y_i, x_j, y_j, lam):
    """lam * x_i + (1 - lam) * x_j and the same for the (soft) labels y.

    `lam` is a scalar for one sample or holds one value per sample of a batch (its leading dimension).
    """
    lam = torch.as_tensor(lam, dtype=x_i.dtype, device=x_i.device)

    def mix(a, b):
        w = lam.reshape(lam.shape + (1,) * (a.dim() - lam.dim())).to(a.dtype)
        return w * a + (1 - w) * b

    return mix(x_i, x_j), mix(y_i, y_j)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


