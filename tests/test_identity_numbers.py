"""Run identity does not depend on how a number was written: α = 1 in one result.json and 1.0 in another is the
same run, while every other difference (a bool against a number, another value, a string) still tells runs apart."""

import copy

from mixupexp.records.identity import identity, identity_hash

TYPED = {
    "model": {"name": "simple_cnn", "widths": [8, 16, 16, 16], "hidden": 32},
    "data": {"name": "synthetic", "num_train": 256, "num_test": 128, "image_size": 16, "signal": 6.0,
             "noise": 60.0},
    "augment": {"name": "mixup", "alpha": 1.0, "ratio": 0.2, "label_smoothing": 0.0},
    "optimizer": {"name": "sgd", "lr": 0.1, "weight_decay": 0.0, "momentum": 0.9, "nesterov": True},
    "trainer": {"epochs": 3, "batch_size": 64, "progress": "off"},
    "eval": {"fgsm_eps": [1.0, 2.0]},
    "seed": 0,
}
# The digest of TYPED before numbers were normalised: run directories named then are found again.
TYPED_HASH = "df2c9b9007"


def changed(**values) -> dict:
    """TYPED with dotted keys set to other values."""
    config = copy.deepcopy(TYPED)
    for dotted, value in values.items():
        group, key = dotted.split("__")
        config[group][key] = value
    return config


def digest(config: dict) -> str:
    return identity_hash(identity(config))


def test_whole_numbers_written_as_int_or_float_are_one_run():
    assert digest(changed(augment__alpha=1)) == digest(TYPED)
    assert digest(changed(augment__label_smoothing=0, optimizer__weight_decay=0)) == digest(TYPED)
    assert digest(changed(trainer__epochs=3.0, data__num_train=256.0)) == digest(TYPED)
    assert digest(changed(model__widths=[8.0, 16, 16.0, 16])) == digest(TYPED)
    assert identity(changed(augment__alpha=1))["augment.alpha"] == 1.0


def test_every_other_difference_still_tells_runs_apart():
    assert digest(changed(augment__alpha=1.5)) != digest(TYPED)
    assert digest(changed(augment__alpha="1")) != digest(changed(augment__alpha=1))
    assert digest(changed(optimizer__nesterov=1)) != digest(TYPED)  # a bool stays a bool
    assert digest(changed(optimizer__nesterov=False)) != digest(TYPED)
    assert identity(changed(optimizer__nesterov=True))["optimizer.nesterov"] is True
    assert digest(changed(model__widths=[8, 16, 16])) != digest(TYPED)
    assert digest(changed(model__widths=[8, 16, 16, 17])) != digest(TYPED)


def test_keys_outside_the_schema_are_normalised_too():
    one = {**TYPED, "extra": {"scale": 2}}
    assert digest(one) == digest({**TYPED, "extra": {"scale": 2.0}})
    assert digest({**TYPED, "extra": {"scale": 1}}) != digest({**TYPED, "extra": {"scale": True}})


def test_hashes_of_typed_configs_are_unchanged():
    assert digest(TYPED) == TYPED_HASH
