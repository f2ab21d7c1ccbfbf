"""What README says a command printed is what the command prints."""

import re

import pytest

from .conftest import REPO, run_cli


def printed_block(after: str) -> list[str]:
    """The lines of the first code block in README after the text `after`."""
    text = (REPO / "README.md").read_text()
    rest = text[text.index(after):]
    return rest.split("```\n", 2)[1].strip().splitlines()


@pytest.mark.slow  # six one-epoch runs
def test_the_quickstart_prints_what_readme_shows(tmp_path):
    proc = run_cli(["--multirun", "experiment=seed_study", "debug=smoke"], cwd=tmp_path)
    # Hydra's log lines carry a time stamp; README shows them without it.
    lines = [re.sub(r"^\[[0-9-]+ [0-9:,]+\]", "", line) for line in (proc.stdout + proc.stderr).splitlines()]
    shown = printed_block("ends with the verdict of\neach configuration against the baseline; on this machine it printed")
    assert shown and all(line in lines for line in shown), (shown, lines)
