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
