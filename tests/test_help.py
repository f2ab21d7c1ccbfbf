"""`--help` starts with examples, lists the groups and presets, and shows only the keys the chosen options use;
tab completion through the installed script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mixupexp.config.help import help_text
from tests.conftest import compose_config, run_cli


def config_part(text: str) -> dict:
    body = text.split("Config (KEY=VALUE; only the keys the chosen options use):\n", 1)[1].split("\n\nMore:", 1)[0]
    return yaml.safe_load(body)


def test_cli_help_starts_with_examples_and_lists_presets_without_plus(tmp_path):
    text = run_cli(["--help"], cwd=tmp_path).stdout
    head = text.splitlines()[:12]
    assert "Examples:" in head and any(line.strip().startswith("python -m mixupexp.train debug=smoke") for line in head)
    assert "  experiment: paper_cifar10, seed_study" in text and "  debug: smoke, subset" in text
    assert "+experiment" not in text
    from mixupexp.config.registry import registered

    chosen = compose_config([]).augment.name  # the lists come from the registry, never copied here
    assert f"  augment: {', '.join(o + '*' if o == chosen else o for o in registered('augment'))}" in text


def test_help_hides_the_keys_that_the_chosen_options_ignore():
    default = config_part(help_text([]))
    assert default["data"]["name"] == "cifar10"
    assert not {"num_train", "signal", "image_size"} & set(default["data"])
    assert set(default["augment"]) == {"name", "label_smoothing"}  # augment=none ignores alpha and ratio
    assert set(default["logger"]) == {"csv"}
    chosen = config_part(help_text(["data=synthetic", "augment=mixup", "logger=[csv,tensorboard]"]))
    assert {"num_train", "signal", "image_size"} <= set(chosen["data"]) and "root" not in chosen["data"]
    assert {"alpha", "ratio"} <= set(chosen["augment"])
    assert chosen["logger"] == {"csv": {}, "tensorboard": {"dir": "tensorboard"}}


def completions(line: str) -> list[str]:
    script = Path(sys.executable).with_name("mixupexp-train")
    env = {**os.environ, "COMP_LINE": line, "COMP_POINT": str(len(line))}
    return subprocess.run([str(script), "-sc", "query=bash"], env=env, capture_output=True, text=True,
                          check=True, timeout=120).stdout.split()


@pytest.mark.slow
def test_tab_completion_offers_groups_presets_and_keys():
    assert "experiment=seed_study" in completions("mixupexp-train experiment=")
    assert "augment=cutmix" in completions("mixupexp-train augment=")
    assert completions("mixupexp-train augment.al") == ["augment.alpha="]


def test_tab_completion_answers_without_importing_the_training_stack():
    # At every TAB the shell runs the command: torch and pandas would cost seconds each time.
    code = ("import atexit, sys; atexit.register(lambda: print('imported:', sorted({'torch', 'pandas'} & "
            "set(sys.modules)))); sys.argv = ['mixupexp-train', '-sc', 'query=bash']; import mixupexp.train")
    line = "mixupexp-train augment="
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "COMP_LINE": line,
                          "COMP_POINT": str(len(line))}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    offered, imported = proc.stdout.strip().splitlines()
    from mixupexp.config.registry import registered

    assert offered.split() == [f"augment={name}" for name in registered("augment")]
    assert imported == "imported: []"


def test_every_options_help_line_is_a_whole_sentence():
    """`optimizer=adam` once stopped mid-sentence: a summary is its docstring's first sentence, whole."""
    from mixupexp.config.registry import GROUPS, registered

    text = help_text([])
    for group in GROUPS:
        for name, option in registered(group).items():
            assert option.summary.endswith("."), f"{group}={name}: {option.summary!r}"
            assert f"{f'{group}={name}':<24}{option.summary}" in text


def test_plan_help_says_what_the_dry_run_prints(tmp_path):
    text = run_cli(["--help"], cwd=tmp_path, module="mixupexp.plan").stdout
    assert len(text.strip().splitlines()) > 5
    for word in ("job", "finished", "new", "runs", "exit"):
        assert word in text
