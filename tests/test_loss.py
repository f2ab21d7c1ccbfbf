import torch
from torch.nn import functional as F

from mixupexp.augment.mixup import mixup_pair, one_hot
from mixupexp.training.loss import soft_cross_entropy


def test_one_hot_targets_equal_cross_entropy():
    torch.manual_seed(0)
    logits, labels = torch.randn(16, 10), torch.randint(0, 10, (16,))
    assert torch.allclose(soft_cross_entropy(logits, one_hot(labels, 10)), F.cross_entropy(logits, labels))


def test_mixed_target_is_lambda_weighted_sum_of_cross_entropies():
    torch.manual_seed(1)
    logits = torch.randn(8, 10)
    y_i, y_j = torch.randint(0, 10, (8,)), torch.randint(0, 10, (8,))
    lam = torch.rand(8)
    _, target = mixup_pair(logits, one_hot(y_i, 10), logits, one_hot(y_j, 10), lam)
    expected = lam * F.cross_entropy(logits, y_i, reduction="none") + (1 - lam) * F.cross_entropy(
        logits, y_j, reduction="none"
    )
    assert torch.allclose(soft_cross_entropy(logits, target), expected.mean(), atol=1e-6)
