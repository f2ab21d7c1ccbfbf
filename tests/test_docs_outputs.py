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


PLAN = re.compile(r"^\s*\$ python -m mixupexp\.plan (.+)$")
MACHINE = re.compile(r"\d+(\.\d+)? ?(s|min|h)\b")  # times: this machine's speed, not the plan's


def comparable(line: str) -> str:
    """A dry-run line without what depends on the machine: its times, and the calibration's account of them."""
    return MACHINE.sub("#", line.split(" left (", 1)[0].strip())


def code_blocks(text: str) -> list[tuple[list[str], list[str]]]:
    """(the lines of each plain ``` block, the markdown table right after it) of a markdown text."""
    lines, blocks, index = text.splitlines(), [], 0
    while index < len(lines):
        if lines[index].strip() == "```":  # a plain block: what a command printed
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip().startswith("```"))
            after = end + 1 + (end + 1 < len(lines) and not lines[end + 1].strip())
            table = []
            while after < len(lines) and lines[after].startswith("|"):
                table.append(lines[after])
                after += 1
            blocks.append((lines[index + 1:end], table))
            index = end + 1
        elif lines[index].strip().startswith("```"):
            index = next(i for i in range(index + 1, len(lines)) if lines[i].strip().startswith("```")) + 1
        else:
            index += 1
    return blocks


def printed_plans() -> list[tuple[str, list[str], list[str], list[str]]]:
    """(file, argv, the lines printed, the markdown table right after the block) of every dry run in the docs
    that starts from an empty sweep directory (a preset shortened with debug=smoke, nothing run before it)."""
    found = []
    for path in sorted((REPO / "docs").glob("*.md")):
        for lines, table in code_blocks(path.read_text()):
            command = PLAN.match(lines[0]) if lines else None
            if command and not command[1].endswith("\\") and "debug=smoke" in command[1]:
                found.append((path.name, shlex.split(command[1]), lines[1:], table))
    return found


def test_the_docs_print_a_dry_run_from_scratch():
    assert printed_plans()


@pytest.mark.parametrize("where, argv, printed, table", printed_plans(), ids=lambda v: v if isinstance(v, str) else None)
def test_a_printed_dry_run_is_what_plan_prints(where, argv, printed, table, tmp_path, capsys):
    """Every line the docs show, in order ("..." stands for lines left out), and the operating table below it
    (the simulation is seeded: its figures are exact; its time column is this machine's)."""
    from mixupexp import plan

    argv = [a if not a.startswith("hydra.sweep.dir=") else f"hydra.sweep.dir={tmp_path / 'sweep'}" for a in argv]
    assert plan.main(argv) == 0
    output = [comparable(line) for line in capsys.readouterr().out.splitlines()]
    position = 0
    for line in printed:
        if line.strip() == "...":
            continue
        expected = comparable(line)
        while position < len(output) and output[position] != expected:
            position += 1
        assert position < len(output), f"{where}: not printed (in this order): {line}"
        position += 1
    shown = [row for row in output if row.startswith("|")]
    assert [comparable(re.sub(r"\| [^|]+ \| (?=[\d.]+ % \| [\d.]+ % \| [\d.]+ % \| [\d.]+ % \|$)", "| T | ", row))
            for row in shown] == [comparable(re.sub(r"\| [^|]+ \| (?=[\d.]+ % \| [\d.]+ % \| [\d.]+ % \| [\d.]+ % \|$)",
                                                   "| T | ", row)) for row in table]
