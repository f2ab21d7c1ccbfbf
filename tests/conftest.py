"""Shared helpers: compose configs the way `python -m mixupexp.train` does, and tiny settings for fast runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A narrow model and a short run, for any data...
TINY_TRAINING = [
    "model.widths=[8,16,16,16]",
    "model.hidden=32",
    "trainer.epochs=1",
    "trainer.batch_size=64",
    "trainer.progress=off",
]
# ...and on a small synthetic problem: a run takes about a second on a 2-core CPU.
TINY = [
    "data=synthetic",
    "data.num_train=256",
    "data.num_test=128",
    "data.image_size=16",
    *TINY_TRAINING,
]


def compose_config(overrides: list[str] = ()):
    from mixupexp.config import compose
    from mixupexp.config.presets import without_preset_plus

    return compose.compose_config(without_preset_plus(list(overrides)))


def checkout_first(env: dict | None = None) -> dict:
    """The environment with this checkout first on PYTHONPATH: a command started by a test runs the code (and so,
    through mixupexp.config.compose, the configs) of the checkout the test stands in, whatever checkout the
    virtual environment's editable install points at."""
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    return env


def run_cli(args: list[str], cwd: Path, module: str = "mixupexp.train", check: bool = True, env=None):
    """Run `python -m MODULE ARGS` as a user would, from this checkout; return the CompletedProcess."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=checkout_first({"HYDRA_FULL_ERROR": "0", **(env or {})}),
        timeout=600,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session", autouse=True)
def home_of_the_tests(tmp_path_factory):
    """A home directory of the tests' own: what the commands keep under ~ (the decoded-image caches, `plan`'s
    calibration of this machine) is written there, never into the home of the user who runs the tests."""
    patch = pytest.MonkeyPatch()
    patch.setenv("HOME", str(tmp_path_factory.mktemp("home")))
    yield
    patch.undo()


@pytest.fixture
def tiny():
    return list(TINY)
