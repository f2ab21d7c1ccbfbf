"""Test-set metrics of a trained model: accuracy, NLL, calibration (ECE) and FGSM robustness.

Images arrive as uint8 tensors on the device and are scaled to [0, 1] here; the model normalises them itself
(see model.py), so the attack perturbs and clips plain [0, 1] images.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

log = logging.getLogger("mixupexp")

ECE_BINS = 15


@dataclass
class EvalMetrics:
    loss: float  # mean negative log-likelihood of the true class
    acc: float  # %
    ece: float  # expected calibration error, %


def expected_calibration_error(confidence: torch.Tensor, correct: torch.Tensor, num_bins: int = ECE_BINS) -> float:
    """ECE in %: sum over equal-width confidence bins of (bin share) * |accuracy in bin - mean confidence in bin|.

    Bin b holds confidences in (b/num_bins, (b+1)/num_bins]; a confidence of exactly 0 joins the first bin.
    """
    confidence = confidence.double().flatten()
    correct = correct.double().flatten()
    edges = torch.linspace(0, 1, num_bins + 1, dtype=torch.float64, device=confidence.device)
    bins = torch.bucketize(confidence, edges[1:-1], right=False)
    conf_sum = torch.bincount(bins, weights=confidence, minlength=num_bins)
    correct_sum = torch.bincount(bins, weights=correct, minlength=num_bins)
    # |sum(correct) - sum(conf)| / N per bin equals share * |acc - conf|, and needs no division by empty bins.
    return 100.0 * ((correct_sum - conf_sum).abs().sum() / max(len(confidence), 1)).item()


def _as_input(images_uint8: torch.Tensor) -> torch.Tensor:
    # channels_last, like the model's weights (train.py): faster convolutions on CPU and GPU.
    return images_uint8.float().div_(255).contiguous(memory_format=torch.channels_last)


def _logits(model, x: torch.Tensor) -> torch.Tensor:
    # Always fp32, whatever precision the model was trained in (and inside any autocast region): accuracy, NLL,
    # ECE and FGSM then mean the same on every device.
    with torch.autocast(x.device.type, enabled=False):
        return model(x).float()


def _conv_norm_pairs(model: nn.Module) -> list[tuple[nn.Sequential, int]]:
    """(sequential, k) for each Conv2d at position k of an nn.Sequential directly followed by a BatchNorm2d that
    uses running statistics."""
    return [(seq, k) for seq in model.modules() if isinstance(seq, nn.Sequential)
            for k in range(len(seq) - 1)
            if isinstance(seq[k], nn.Conv2d) and isinstance(seq[k + 1], nn.BatchNorm2d)
            and seq[k + 1].track_running_stats]


def folded_for_inference(model: nn.Module) -> nn.Module:
    """`model` (in eval mode) with the BatchNorm layers that directly follow a convolution folded into it, as a
    copy: w' = w·γ/σ, b' = (b − μ)·γ/σ + β. In eval mode BatchNorm is that affine map, so the copy computes the
    same function with one pass over each activation instead of two; on a CPU those passes were about a sixth of
    an evaluation of the study's CNN. The outputs differ from the model's by float rounding only
    (tests/test_evaluation.py checks the metrics on a fixed model). A model with nothing to fold is returned as
    it is."""
    if not _conv_norm_pairs(model):
        return model
    folded = copy.deepcopy(model)
    for seq, k in _conv_norm_pairs(folded):
        seq[k] = fuse_conv_bn_eval(seq[k], seq[k + 1]).to(memory_format=torch.channels_last)
        seq[k + 1] = nn.Identity()
    return folded


@torch.inference_mode()
def evaluate(model, images, labels, batch_size: int, device, fold: bool = True) -> EvalMetrics:
    """NLL, accuracy (%) and ECE (%) on (images, labels), uint8 images already on `device`; `fold=False`
    evaluates the model as it is (the reference `python -m mixupexp.bench` times the folded copy against)."""
    model.eval()
    net = folded_for_inference(model) if fold else model
    loss_sum = torch.zeros((), device=device)
    confidences, corrects = [], []
    for start in range(0, len(labels), batch_size):
        x = _as_input(images[start : start + batch_size])
        y = labels[start : start + batch_size]
        logits = _logits(net, x)
        loss_sum += F.cross_entropy(logits, y, reduction="sum")
        confidence, predicted = logits.softmax(1).max(1)
        confidences.append(confidence)
        corrects.append(predicted == y)
    model.train()
    correct = torch.cat(corrects)
    return EvalMetrics(
        loss=loss_sum.item() / len(labels),
        acc=100.0 * correct.sum().item() / len(labels),
        ece=expected_calibration_error(torch.cat(confidences), correct),
    )


def fgsm_accuracy(
    model, images, labels, eps_255: list[float], batch_size: int, device
) -> dict[float, float]:
    """Accuracy (%) under the fast gradient sign attack, for each ε given in units of 1/255 of the pixel range.

    x_adv = clip(x + ε·sign(∇x loss), 0, 1) on the [0, 1] image. The gradient does not depend on ε: its sign is
    computed once for the whole test set (int8, a quarter of the images' float size), then each ε takes one
    forward pass and logs one line, so a long attack shows its progress. ε = 0 gives the clean accuracy of
    `evaluate`.
    """
    if not eps_255:
        return {}
    started = time.perf_counter()
    model.eval()
    directions = []
    for start in range(0, len(labels), batch_size):
        x = _as_input(images[start : start + batch_size]).requires_grad_(True)
        y = labels[start : start + batch_size]
        # autograd.grad leaves the parameters' .grad untouched (a captured training step owns those tensors).
        (grad,) = torch.autograd.grad(F.cross_entropy(_logits(model, x), y), x)
        directions.append(grad.sign().to(torch.int8))
    log.info("FGSM: gradients of %d test images (%.1fs)", len(labels), time.perf_counter() - started)
    accuracy = {}
    with torch.no_grad():
        for eps in eps_255:
            started = time.perf_counter()
            correct = 0
            for index, start in enumerate(range(0, len(labels), batch_size)):
                x = _as_input(images[start : start + batch_size])
                x_adv = (x + (eps / 255) * directions[index]).clamp_(0, 1)
                correct += (_logits(model, x_adv).argmax(1) == labels[start : start + batch_size]).sum().item()
            accuracy[eps] = 100.0 * correct / len(labels)
            log.info("FGSM accuracy at eps=%g/255: %.2f%% (%.1fs)", eps, accuracy[eps], time.perf_counter() - started)
    model.train()
    return accuracy


def fgsm_key(eps_255: float) -> str:
    """The result.json field of the FGSM accuracy at ε = eps_255/255: `fgsm_acc_4`, `fgsm_acc_0.5`."""
    return f"fgsm_acc_{eps_255:g}"
