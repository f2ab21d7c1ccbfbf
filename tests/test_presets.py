"""experiment=NAME and debug=NAME presets, selected with or without `+`."""

from __future__ import annotations

import json

import pytest

from mixupexp.config.presets import without_preset_plus
from tests.conftest import TINY, compose_config, run_cli


def test_debug_presets_set_what_they_promise():
    smoke = compose_config(["debug=smoke"])
    assert (smoke.data.name, smoke.trainer.epochs, list(smoke.eval.fgsm_eps)) == ("synthetic", 1, [])
    subset = compose_config(["debug=subset"])
    assert (subset.data.name, subset.data.train_subset, subset.trainer.epochs) == ("cifar10", 2000, 2)


def test_an_experiment_overrides_the_primary_config_and_a_debug_preset_overrides_the_experiment():
    paper = compose_config(["experiment=paper_cifar10"])
    assert (paper.model.name, paper.trainer.epochs, paper.optimizer.name) == ("preact_resnet18", 200, "sgd")
    quick = compose_config(["experiment=paper_cifar10", "debug=smoke"])
    assert (quick.model.name, quick.trainer.epochs, quick.data.name) == ("preact_resnet18", 1, "synthetic")


@pytest.mark.parametrize("argv, expected", [
    (["+experiment=seed_study", "+debug=smoke", "+x=1"], ["experiment=seed_study", "debug=smoke", "+x=1"]),
    (["experiment=seed_study", "seed=1"], ["experiment=seed_study", "seed=1"]),
])
def test_the_plus_of_a_preset_is_optional(argv, expected):
    assert without_preset_plus(argv) == expected


@pytest.mark.slow
def test_the_plus_form_still_selects_the_presets(tmp_path):
    printed = run_cli(["--cfg", "job", "+experiment=paper_cifar10", "+debug=smoke"], cwd=tmp_path).stdout
    assert "name: preact_resnet18" in printed and "epochs: 1" in printed


@pytest.mark.slow
def test_seed_study_runs_as_a_sweep_without_plus(tmp_path):
    # debug=smoke + TINY keep it to seconds; seed=0 narrows the preset's 3 seeds to 1: runs none and mixup.
    run_cli(["experiment=seed_study", "debug=smoke", *TINY, "seed=0", "hydra.sweep.dir=sweep"], cwd=tmp_path)
    results = [json.loads(p.read_text()) for p in sorted((tmp_path / "sweep").glob("*/result.json"))]
    assert sorted(r["config"]["augment"]["name"] for r in results) == ["mixup", "none"]
    assert all(r["status"] == "ok" and r["config"]["data"]["name"] == "synthetic" for r in results)
    assert (tmp_path / "sweep" / "summary.csv").exists()
