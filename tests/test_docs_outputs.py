"""The one-line answers to bad input that README and docs/ print are the ones the command prints: every
`$ python -m mixupexp.train ARGS` line in a code block followed by an `error: ...` line is checked against what
the command line's check prints, so that a changed message cannot leave the docs stale."""

from __future__ import annotations

import re
import shlex

import pytest

from mixupexp.runs.command_plan import check_command_line

from .conftest import REPO

COMMAND = re.compile(r"^\s*\$ python -m mixupexp\.train (.+)$")


def printed_errors() -> list[tuple[str, list[str], str]]:
    """(file, argv, the error line as printed) of every such pair in README.md and docs/*.md."""
    found = []
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        lines = path.read_text().splitlines()
        for line, following in zip(lines, lines[1:]):
            command = COMMAND.match(line)
            if command and following.strip().startswith("error: ") and not command[1].endswith("\\"):
                found.append((path.name, shlex.split(command[1]), following.strip()))
    return found


def test_the_docs_print_some_errors():
    assert len(printed_errors()) >= 4


@pytest.mark.parametrize("where, argv, printed", printed_errors(), ids=lambda v: v if isinstance(v, str) else None)
def test_a_printed_error_is_what_the_command_prints(where, argv, printed, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing the command might write lands in the checkout
    with pytest.raises(SystemExit) as stop:
        check_command_line(argv)
    assert stop.value.code == 2
    assert capsys.readouterr().err.strip() == printed
