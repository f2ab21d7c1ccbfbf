"""Defaults and value checks of the mixing methods, the model and the lr schedule options."""

import pytest

from mixupexp.config.schema import ConfigError
from mixupexp.training.validate import validate

from .conftest import compose_config


@pytest.mark.parametrize(
    "method,alpha,ratio", [("mixup_batch", 1.0, 1.0), ("cutmix", 1.0, 0.5), ("manifold_mixup", 2.0, 1.0)]
)
def test_method_defaults(method, alpha, ratio):
    augment = compose_config([f"augment={method}"]).augment
    assert (augment.alpha, augment.ratio, augment.label_smoothing) == (alpha, ratio, 0.0)


def test_standard_augmentation_and_schedule_are_off_by_default():
    cfg = compose_config()
    assert cfg.data.basic_augment is False and cfg.optimizer.schedule == "none"
    assert compose_config(["optimizer=sgd"]).optimizer.schedule == "none"
    assert list(compose_config(["augment=manifold_mixup"]).augment.mix_after_blocks) == [0, 1, 2]


def test_paper_preset_is_the_papers_setting():
    cfg = compose_config(["+experiment=paper_cifar10"])
    assert (cfg.model.name, list(cfg.model.widths), cfg.data.name, cfg.data.basic_augment) == (
        "preact_resnet18", [64, 128, 256, 512], "cifar10", True)
    opt = cfg.optimizer
    assert (opt.name, opt.lr, opt.momentum, opt.weight_decay, opt.schedule, list(opt.milestones), opt.gamma) == (
        "sgd", 0.1, 0.9, 1e-4, "step", [100, 150], 0.1)
    assert (cfg.trainer.epochs, cfg.trainer.batch_size) == (200, 128)
    assert compose_config(["+experiment=paper_cifar10", "augment=mixup_batch"]).augment.alpha == 1.0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["augment.label_smoothing=1"], "augment.label_smoothing=1.0 must be in [0, 1)"),
        (["augment.label_smoothing=-0.1"], "augment.label_smoothing=-0.1 must be in [0, 1)"),
        (["augment=manifold_mixup", "augment.mix_after_blocks=[5]"], "augment.mix_after_blocks=[5] must be"),
        (["augment=manifold_mixup", "augment.mix_after_blocks=[]"], "augment.mix_after_blocks=[] must be"),
        (["model=preact_resnet18", "model.widths=[8,16]"], "model.widths=[8, 16] must list the 4 stage widths"),
        (["optimizer=sgd", "optimizer.schedule=linear"], "optimizer.schedule='linear' is not one of"),
        (["optimizer=sgd", "optimizer.schedule=step", "optimizer.milestones=[150,100]"],
         "optimizer.milestones=[150, 100] must be increasing positive epochs"),
        (["optimizer=sgd", "optimizer.schedule=step", "optimizer.gamma=0"], "optimizer.gamma=0.0 must be > 0"),
    ],
)
def test_bad_method_values_are_named_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as info:
        validate(compose_config(overrides))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_mix_after_blocks_is_checked_only_for_manifold_mixup():
    validate(compose_config(["augment=mixup", "augment.mix_after_blocks=[9]"]))
    validate(compose_config(["augment=manifold_mixup", "augment.mix_after_blocks=[0,4]"]))  # 4 = before the head
