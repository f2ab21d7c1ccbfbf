"""The tests run the checkout they stand in: its code and its configs, whatever checkout the virtual environment's
editable install points at."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

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


TOY_METHOD = '''

@register("augment", "toy_mix", ignores=INPUT_ONLY, stage="batch")
def toy_mix(cfg) -> Augmentation:
    """A toy method: batch mixup under another name."""
    return Augmentation(None, BatchMixer(mixup_batch, cfg.alpha, cfg.ratio, cfg.label_smoothing), None)
'''


@pytest.mark.slow
def test_a_new_method_is_a_yaml_file_a_function_and_its_docs_rows_and_no_test_is_edited(tmp_path):
    """In a clone: add augment=toy_mix as docs/configuration.md says (one YAML file, one registered function, its
    docs rows), edit no test, and the tests that list, compose, validate, help and train every method pass there
    with it among them."""
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True,
                           text=True, check=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, clone / name)
    (clone / "conf" / "augment" / "toy_mix.yaml").write_text("name: toy_mix\nalpha: 1.0\nratio: 1.0\n")
    methods = clone / "mixupexp" / "augment" / "methods.py"
    methods.write_text(methods.read_text() + TOY_METHOD)
    docs = clone / "docs" / "configuration.md"
    text = docs.read_text().replace("`cutmix`, `manifold_mixup` (see", "`cutmix`, `manifold_mixup`, `toy_mix` (see")
    docs.write_text(text.replace("\n| `cutmix` |", "\n| `toy_mix` | batch mixup under another name | α = 1, ratio = 1 |"
                                                 "\n| `cutmix` |", 1))
    tests = ["tests/test_options.py", "tests/test_help.py", "tests/test_config.py", "tests/test_method_config.py",
             "tests/test_train.py::test_every_method_trains_on_both_loaders_with_smoothing_and_crop_flip"]
    env = checkout_first()
    env["PYTHONPATH"] = str(clone)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], cwd=clone,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    shown = subprocess.run([sys.executable, "-m", "mixupexp.train", "--help"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    groups = next(line for line in shown.stdout.splitlines() if line.startswith("  augment: "))
    assert "toy_mix" in groups and "  augment=toy_mix" in shown.stdout
