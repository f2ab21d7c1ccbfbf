"""Soft-target cross-entropy: the loss of a prediction against a probability vector (a mixed label)."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of -sum_c target_c * log softmax(logits)_c.

    For one-hot targets this is F.cross_entropy with class indices; for lam*e_i + (1-lam)*e_j it is
    lam*CE(i) + (1-lam)*CE(j), because the loss is linear in the target.
    """
    return F.cross_entropy(logits.float(), target)
