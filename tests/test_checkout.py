"""The tests run the checkout they stand in: its code and its configs, whatever checkout the virtual environment's
editable install points at."""

from __future__ import annotations

import shutil
import subprocess
import sys

from tests.conftest import REPO, checkout_first


def test_a_config_changed_in_a_clone_is_what_the_clones_command_composes(tmp_path):
    clone = tmp_path / "clone"
    for part in ("mixupexp", "conf", "hydra_plugins"):
        shutil.copytree(REPO / part, clone / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", clone)
    config = clone / "conf" / "config.yaml"
    config.write_text(config.read_text().replace("\nseed: 0\n", "\nseed: 4242\n"))
    assert "seed: 4242" in config.read_text()

    env = checkout_first()
    env["PYTHONPATH"] = str(clone)  # the clone alone, as its own tests would put it
    shown = subprocess.run([sys.executable, "-m", "mixupexp.train", "--cfg", "job", "--package", "_global_"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "seed: 4242" in shown.stdout

    where = subprocess.run([sys.executable, "-c", "import mixupexp.config.compose as c; print(c.CONFIG_PATH)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert where.stdout.strip() == str(clone / "conf")


def test_commands_started_by_tests_import_this_checkout(tmp_path):
    probe = subprocess.run([sys.executable, "-c", "import mixupexp; print(mixupexp.__file__)"], cwd=tmp_path,
                           env=checkout_first(), capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip() == str(REPO / "mixupexp" / "__init__.py")
