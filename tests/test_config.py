
import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from mixupexp.config.schema import ConfigError
from mixupexp.training.validate import validate

from .conftest import REPO, compose_config

GROUPS = ["model", "data", "augment", "optimizer"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (REPO / "conf" / group).glob("*.yaml"))


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_group_option_composes(group, option):
    overrides = [f"{group}={option}"]
    if (group, option) == ("data", "image_folder"):
        overrides.append("data.root=/some/folder")
    cfg = compose_config(overrides)
    assert cfg[group].name == option
    validate(cfg)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_preset_composes(experiment):
    cfg = compose_config([f"+experiment={experiment}"])
    validate(cfg)


def test_defaults_are_the_study():
    cfg = compose_config()
    assert (cfg.model.name, cfg.data.name, cfg.augment.name, cfg.optimizer.name) == ("simple_cnn", "cifar10", "none", "adam")
    assert (cfg.trainer.epochs, cfg.trainer.batch_size, cfg.optimizer.lr) == (30, 128, 1e-3)
    assert list(cfg.model.widths) == [32, 64, 128, 256] and cfg.model.hidden == 256
    mixup = compose_config(["augment=mixup"]).augment
    assert (mixup.alpha, mixup.ratio) == (0.2, 0.2)


def test_none_accepts_mixup_keys_so_sweeps_compose():
    cfg = compose_config(["augment=none", "augment.alpha=0.4", "augment.ratio=0.5"])
    validate(cfg)


def test_seed_study_preset_is_a_multirun_over_augment_and_seed():
    cfg = compose_config(["+experiment=seed_study"])
    # compose() does not return the hydra node by default; read the preset itself
    text = (REPO / "conf" / "experiment" / "seed_study.yaml").read_text()
    assert "augment: none,mixup" in text and "seed: 0,1,2" in text and "MULTIRUN" in text


def test_wrong_type_fails_at_composition():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["trainer.epochs=many"])
    assert isinstance(info.value.__cause__, ValidationError)


def test_unknown_key_fails_at_composition():
    with pytest.raises(ConfigCompositionException) as info:
        compose_config(["trainer.epoch=3"])
    assert isinstance(info.value.__cause__, (ConfigKeyError, ConfigAttributeError))


@pytest.mark.parametrize("override,key", [("+trainer.epoch=3", "trainer.epoch"), ("+augment.beta=1", "augment.beta"),
                                          ("+sed=1", "sed")])
def test_unknown_key_added_with_plus_fails_validation(override, key):
    with pytest.raises(ConfigError, match=f"unknown key {key}"):
        validate(compose_config([override]))


def test_unknown_group_option_fails_at_composition():
    with pytest.raises(ConfigCompositionException, match="augment"):
        compose_config(["augment=cutmixx"])


@pytest.mark.parametrize(
    "override,message",
    [
        ("augment.alpha=0", "augment.alpha=0.0 must be > 0"),
        ("augment.alpha=-1", "augment.alpha=-1.0 must be > 0"),
        ("augment.ratio=2", "augment.ratio=2.0 must be in [0, 1]"),
        ("augment.ratio=-0.1", "augment.ratio=-0.1 must be in [0, 1]"),
        ("trainer.epochs=0", "trainer.epochs=0 must be > 0"),
        ("trainer.batch_size=-1", "trainer.batch_size=-1 must be > 0"),
        ("optimizer.lr=0", "optimizer.lr=0.0 must be > 0"),
        ("trainer.device=tpu", "trainer.device='tpu' is not one of"),
        ("data.train_subset=0", "data.train_subset=0 must be > 0"),
        ("data.val_size=-1", "data.val_size=-1 must be >= 0"),
    ],
)
def test_bad_values_are_named_in_one_line(override, message):
    cfg = compose_config(["augment=mixup", override])
    with pytest.raises(ConfigError) as info:
        validate(cfg)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_image_folder_needs_a_root():
    with pytest.raises(ConfigError, match="data.root"):
        validate(compose_config(["data=image_folder"]))
