"""Overrides that Hydra's grammar rejects without naming them, or accepts wrongly: one line naming the override and
the fix, exit 2, nothing written."""

from __future__ import annotations

import os

import pytest

from .conftest import TINY, run_cli


@pytest.mark.parametrize("args,expected", [
    (["--multirun", "augment=mixup", "augment.alpha=0.1,", "0.4"],
     "augment.alpha=0.1, 0.4: the shell split the values at the space; write them without spaces, "
     "augment.alpha=0.1,0.4"),
    (["data.root=~/cifar10"], "data.root=~/cifar10: Hydra's override grammar does not read an unquoted ~; write the "
                              "path out, data.root={home}/cifar10"),
    (['hydra.run.dir="~/runs/a"'], "Hydra does not expand ~ in hydra.run.dir (it would create a folder named ~ "
                                   "here); write hydra.run.dir={home}/runs/a"),
    (["--multirun", "hydra.sweep.dir='~/sweep'", "seed=0,1"], "Hydra does not expand ~ in hydra.sweep.dir"),
])
def test_misread_overrides_get_one_line_naming_them(tmp_path, args, expected):
    flags = [a for a in args if a.startswith("--")]
    proc = run_cli([*flags, *TINY, *(a for a in args if a not in flags)], cwd=tmp_path, check=False)
    assert proc.returncode == 2
    # {home}: the home of the command's environment, read when the test runs (the tests give theirs a folder)
    expected = expected.replace("{home}", os.path.expanduser("~"))
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and expected in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no outputs/, no folder named ~
