"""The `augment` config group: one registered builder per method, each saying where in the flow it acts.

A method acts at one of three points (its `stage`): inside the loader, per training image (`loader`: the study's
mixup, which mixes about `ratio` of the images with a partner from the whole training set); on each drawn batch
(`batch`: mixup_batch, cutmix); or on the hidden state inside the model (`hidden`: manifold mixup). Label
smoothing applies after any of them, `none` included. Adding a method is a YAML file in conf/augment/ and one
function here (README, "Add a method").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from mixupexp.augment.batch import BatchMixer, HiddenMixer, cutmix_batch, mixup_batch
from mixupexp.augment.mixup import mixup_pair
from mixupexp.config.registry import register, registered

NOT_MIXING = ("augment.alpha", "augment.ratio", "augment.mix_after_blocks")
INPUT_ONLY = ("augment.mix_after_blocks",)


@dataclass(frozen=True)
class SampleMixer:
    """A per-sample (loader-stage) method: each drawn training image is mixed, with probability `ratio`, with a
    partner drawn from the whole training set, lambda ~ Beta(alpha, alpha), by `pair(x_i, y_i, x_j, y_j, lam)`
    (mixup_pair's signature: one sample with a scalar lam, or a batch with one lam per sample)."""

    pair: Callable
    alpha: float
    ratio: float


@dataclass(frozen=True)
class Augmentation:
    """What the chosen method does at each point of a training step."""

    sample: Optional[SampleMixer]  # what the loader mixes per training image; None: the loader does not mix
    batch: BatchMixer  # applied to every drawn batch: a batch-level method and/or label smoothing
    hidden: Optional[HiddenMixer]  # manifold mixup's per-batch plan for the model, or None


def build_augmentation(cfg) -> Augmentation:
    """The augmentation that `cfg.name` (the `augment` config group) names."""
    return registered("augment")[cfg.name].build(cfg)


@register("augment", "none", ignores=NOT_MIXING, stage="none")
def none(cfg) -> Augmentation:
    """No mixing (the baseline); label smoothing still applies when set."""
    return Augmentation(None, BatchMixer(None, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)


@register("augment", "mixup", ignores=INPUT_ONLY, stage="loader")
def mixup(cfg) -> Augmentation:
    """The study's mixup: about `ratio` of the training images mixed with a partner from the whole training set."""
    return Augmentation(SampleMixer(mixup_pair, cfg.alpha, cfg.ratio),
                        BatchMixer(None, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)


@register("augment", "mixup_batch", ignores=INPUT_ONLY, stage="batch")
def batch_mixup(cfg) -> Augmentation:
    """Zhang et al.'s mixup: a whole batch mixed with a permutation of itself, with probability `ratio`."""
    return Augmentation(None, BatchMixer(mixup_batch, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)


@register("augment", "cutmix", ignores=INPUT_ONLY, stage="batch")
def cutmix(cfg) -> Augmentation:
    """CutMix: a box pasted from each sample's partner in the batch, with probability `ratio`."""
    return Augmentation(None, BatchMixer(cutmix_batch, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)


@register("augment", "manifold_mixup", stage="hidden")
def manifold_mixup(cfg) -> Augmentation:
    """Manifold mixup: the hidden state after a block drawn from `mix_after_blocks` mixed, with probability `ratio`."""
    hidden = HiddenMixer(cfg.alpha, cfg.ratio, cfg.mix_after_blocks)
    return Augmentation(None, BatchMixer(None, cfg.alpha, cfg.ratio, cfg.label_smoothing), hidden)
