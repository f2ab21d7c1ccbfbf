"""A misspelled group, option or key gets the nearest valid override in its one-line error."""

from __future__ import annotations

import pytest

from mixupexp.config.suggest import dotted_keys, groups_and_options, suggest
from mixupexp.runs.command_plan import check_command_line
from tests.conftest import compose_config, run_cli


@pytest.fixture(scope="module")
def vocabulary():
    return groups_and_options(), dotted_keys(compose_config())


@pytest.mark.parametrize("typed, meant", [
    ("agument=mixup", "augment=mixup"),
    ("alpha=0.4", "augment.alpha=0.4"),
    ("augment=cutmixx", "augment=cutmix"),
    ("augment.alpah=0.4", "augment.alpha=0.4"),
    ("trainer.epoch=2", "trainer.epochs=2"),
    ("fgsm_eps=[1]", "eval.fgsm_eps=[1]"),
    ("loger=tensorboard", "logger=tensorboard"),
    ("experiment=seed_studdy", "experiment=seed_study"),
    ("+experimnt=seed_study", "+experiment=seed_study"),
    ("num_train=100", "data.num_train=100"),
])
def test_nearest_valid_override(vocabulary, typed, meant):
    assert suggest(typed, *vocabulary) == meant


def test_no_suggestion_for_a_name_far_from_every_valid_one(vocabulary):
    assert suggest("zzzqqq=1", *vocabulary) is None


@pytest.mark.parametrize("typed, meant", [
    ("agument=mixup", "augment=mixup"),
    ("alpha=0.4", "augment.alpha=0.4"),
    ("augment=cutmixx", "augment=cutmix"),
    ("+experimnt=seed_study", "+experiment=seed_study"),
])
def test_the_one_line_error_names_the_suggestion(typed, meant, capsys):
    with pytest.raises(SystemExit) as exit_:
        check_command_line(["data=synthetic", typed])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith(f"(did you mean {meant}?)")


def test_the_command_line_suggests(tmp_path):
    proc = run_cli(["agument=mixup"], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: Could not override 'agument': Key 'agument' not in 'Config' (did you mean augment=mixup?)"
    ]


@pytest.mark.parametrize("command, meant", [
    (["hydra/sweeper=tune", "augment=mixup", "augment.alpha=interval(0.05,2.0)", "hydra.sweeper.racin=true"],
     "hydra.sweeper.racing=true"),
    (["hydra/sweeper=tune", "augment=mixup", "augment.alpha=interval(0.05,2.0)", "hydra.sweeper.confirm.max_sed=3"],
     "hydra.sweeper.confirm.max_seeds=3"),
    (["hydra/sweeper=sequential", "augment=none,mixup", "hydra.sweeper.min_seed=3"], "hydra.sweeper.min_seeds=3"),
    (["hydra/launcher=parallel", "augment=none,mixup", "hydra.launcher.n_job=2"], "hydra.launcher.n_jobs=2"),
])
def test_a_misspelled_sweeper_or_launcher_key_is_meant_among_that_nodes_keys(tmp_path, capsys, command, meant):
    """Not a key of another group: hydra.sweeper.racing=true once answered "did you mean trainer=true?"."""
    with pytest.raises(SystemExit) as exit_:
        check_command_line(["--multirun", "data=synthetic", "data.val_size=64", *command,
                            f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith(f"(did you mean {meant}?)")


def test_a_sweeper_key_near_no_key_of_its_node_gets_no_suggestion(tmp_path, capsys):
    with pytest.raises(SystemExit):
        check_command_line(["--multirun", "data=synthetic", "hydra/sweeper=tune", "augment=mixup",
                            "augment.alpha=interval(0.05,2.0)", "hydra.sweeper.xyzzy=3",
                            f"hydra.sweep.dir={tmp_path / 'sweep'}"])
    assert "did you mean" not in capsys.readouterr().err
