"""One home per option: the registry agrees with conf/<group>/*.yaml, and a new method is one YAML file plus one
registered function."""

from __future__ import annotations

import json

import pytest
import yaml

from mixupexp.augment.batch import BatchMixer, mixup_batch
from mixupexp.augment.methods import Augmentation, SampleMixer
from mixupexp.config.options import choices, ignored_keys, option
from mixupexp.config.registry import GROUPS, register, registered, unregister
from mixupexp.training.run import train
from mixupexp.training.validate import validate
from tests.conftest import REPO, TINY, compose_config


@pytest.mark.parametrize("group", GROUPS)
def test_every_option_has_one_yaml_file_and_one_builder(group):
    files = {path.stem: yaml.safe_load(path.read_text()) for path in (REPO / "conf" / group).glob("*.yaml")}
    assert set(files) == set(registered(group))
    for name, content in files.items():
        assert content["name"] == name  # the file's option is the option it is named after
        # a YAML file sets no key that its option ignores: it would be dropped from identity without a word
        assert not {f"{group}.{key}" for key in content} & set(option(group, name).ignores) - {f"{group}.name"}


def test_vocabulary_and_ignored_keys_come_from_the_registry():
    assert choices()["augment.name"] == tuple(registered("augment"))
    assert ignored_keys({"augment.name": "none"}) == set(option("augment", "none").ignores)
    assert "model.hidden" in ignored_keys({"model.name": "preact_resnet18"})
    assert ignored_keys({"optimizer.name": "adam", "optimizer.schedule": "step"}) == {"optimizer.momentum",
                                                                                     "optimizer.nesterov"}


def test_registering_an_option_twice_is_refused():
    with pytest.raises(ValueError, match="registered twice"):
        register("augment", "mixup")(lambda cfg: None)


@pytest.fixture
def toy_augmentation(tmp_path):
    """`augment=toy`: a YAML file in a config folder of its own (found through hydra.searchpath) and one function."""
    conf = tmp_path / "conf" / "augment"
    conf.mkdir(parents=True)
    (conf / "toy.yaml").write_text("name: toy\nalpha: 1.0\nratio: 1.0\n")
    built = []

    @register("augment", "toy", ignores=("augment.mix_after_blocks",), stage="batch")
    def toy(cfg) -> Augmentation:
        """Batch mixup of every batch (a toy method for the test)."""
        built.append(cfg.name)
        return Augmentation(None, BatchMixer(mixup_batch, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)

    yield f"hydra.searchpath=[file://{tmp_path / 'conf'}]", built
    unregister("augment", "toy")


def test_a_toy_method_is_one_yaml_file_and_one_registered_function(tmp_path, toy_augmentation):
    searchpath, built = toy_augmentation
    cfg = compose_config([*TINY, "augment=toy", searchpath])
    validate(cfg)  # the vocabulary knows it
    assert cfg.augment.name == "toy"
    result = train(cfg, tmp_path / "run")
    assert result["status"] == "ok" and built == ["toy"]
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["identity"]["augment.name"] == "toy" and "augment.mix_after_blocks" not in saved["identity"]


def test_an_unregistered_option_is_refused_by_name():
    cfg = compose_config(TINY)
    cfg.augment.name = "nope"
    with pytest.raises(Exception, match=f"augment.name='nope' is not one of {', '.join(registered('augment'))}"):
        validate(cfg)


@pytest.fixture
def toy_per_sample(tmp_path):
    """`augment=toy_swap`: a per-sample (loader-stage) method with pair math of its own: a mixed image is replaced
    by its partner outright (lam ignored), labels and all."""
    conf = tmp_path / "conf" / "augment"
    conf.mkdir(parents=True)
    (conf / "toy_swap.yaml").write_text("name: toy_swap\nalpha: 1.0\nratio: 1.0\n")
    calls = []

    def swap(x_i, y_i, x_j, y_j, lam):
        calls.append(tuple(x_i.shape))
        return x_j, y_j

    @register("augment", "toy_swap", ignores=("augment.mix_after_blocks",), stage="loader")
    def toy_swap(cfg) -> Augmentation:
        """Each drawn image replaced by a random other one (a toy per-sample method for the test)."""
        return Augmentation(SampleMixer(swap, cfg.alpha, cfg.ratio), BatchMixer(None, cfg.alpha, cfg.ratio), None)

    yield f"hydra.searchpath=[file://{tmp_path / 'conf'}]", calls
    unregister("augment", "toy_swap")


@pytest.mark.parametrize("loader", ["device", "dataloader"])
def test_a_per_sample_method_plugs_its_own_pair_math_into_both_loaders(tmp_path, toy_per_sample, loader):
    """A loader-stage method was wired to mixup_pair and to augment.alpha read in training/run.py: its own math
    could not be added as a YAML file and one function."""
    searchpath, calls = toy_per_sample
    cfg = compose_config([*TINY, "augment=toy_swap", f"trainer.loader={loader}", searchpath])
    validate(cfg)
    result = train(cfg, tmp_path / "run")
    assert result["status"] == "ok" and result["loader"] == loader
    # The device loader mixes whole batches (one call a step), the Dataset one image at a time.
    batch = cfg.trainer.batch_size
    assert calls and all(shape[0] == (batch if loader == "device" else 3) for shape in calls)


@pytest.mark.parametrize("group", [*GROUPS, "logger", "experiment", "debug"])
def test_the_configuration_docs_list_every_option_of_each_group(group):
    """docs/configuration.md's table of groups names exactly the options conf/<group>/ holds (it once left out two
    presets), and its table of methods has one row per augment option."""
    import re

    docs = (REPO / "docs" / "configuration.md").read_text()
    row = next(line for line in docs.splitlines() if line.startswith(f"| `{group}`"))
    listed = {name for name in re.findall(r"`([^`]+)`", row.split("|")[2]) if re.fullmatch(r"\w+", name)}
    assert listed == {path.stem for path in (REPO / "conf" / group).glob("*.yaml")}
    if group == "augment":
        methods = docs.split("## Methods", 1)[1].split("\n\n")
        table = next(block for block in methods if block.startswith("| `augment=` |"))
        assert {re.match(r"\| `(\w+)`", line)[1] for line in table.splitlines()[2:]} == set(registered("augment"))
