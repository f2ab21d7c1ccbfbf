"""The family of a sequential sweep's directory: every configuration ever compared there, recorded at the first
command and only ever grown.

The guarantee of the sweep (analysis/sequential.py) is a union bound over the K comparisons it judges, each at
alpha / K. K must be fixed before the data are seen: were it re-derived from each command line, running a
directory of 8 configurations again with only the most promising one would judge that one at alpha instead of
alpha / 8 -- a choice made after seeing the data, which raises the chance of a false verdict well above alpha
(`sequential_simulation.pruned_error_rate`). So `family.json` in the sweep's directory names every configuration
(its run identity and its label) any command compared there; a command judges at alpha / K with K the size of
that union, and one that compares fewer says so and keeps the larger K. The summary of the directory reads the
same file, so it judges as the sweeps did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Optional

from mixupexp.config.schema import ConfigError
from mixupexp.records.files import write_json

FAMILY_FILE = "family.json"


def recorded(sweep_dir: Path) -> dict[str, str]:
    """{run key: label} of every configuration compared in the directory so far ({} for a new one); ConfigError
    for a record that cannot be read (guessing a smaller family would lower the bar)."""
    path = Path(sweep_dir) / FAMILY_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path} cannot be read ({type(e).__name__}: {e}); restore it from the configurations "
                          "compared in this directory, or run the sweep in another one (hydra.sweep.dir=DIR)") from None
    return {entry["run_key"]: entry["configuration"] for entry in data.get("compared", [])}


def union(before: dict[str, str], compared: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The family grown by this command's (run key, label) pairs, in the order they were first compared."""
    grown = dict(before)
    for key, label in compared:
        grown.setdefault(key, label)
    return grown


def record(sweep_dir: Path, family: dict[str, str]) -> None:
    write_json(Path(sweep_dir) / FAMILY_FILE, {
        "k": len(family),
        "compared": [{"run_key": key, "configuration": label} for key, label in family.items()]})


def shrink_line(sweep_dir: Path, compared: int, family: dict[str, str], alpha: float) -> Optional[str]:
    """The one line a command comparing fewer configurations than its directory's family prints; None otherwise."""
    if compared >= len(family):
        return None
    return (f"{sweep_dir} has compared {len(family)} configurations and this command compares {compared}: every "
            f"comparison is judged at {100 * alpha:g} %/{len(family)} (K = every configuration ever compared in "
            f"this directory, {FAMILY_FILE}), not {100 * alpha:g} %/{compared}")


def join(design, write: bool) -> Optional[str]:
    """Set `design.family_size` to its directory's family grown by the design's comparisons, and record that
    family when `write` (a sweep that starts; a dry run only reads); return the line to print if it shrank."""
    compared = [(arm.key, arm.label) for family in design.families for arm in family.members]
    grown = union(recorded(design.sweep_dir), compared)
    if write:
        record(design.sweep_dir, grown)
    design.family_size = len(grown)
    return shrink_line(design.sweep_dir, design.compared, grown, design.settings.alpha)


def recorded_size(sweep_dirs: Iterable[Path]) -> int:
    """The largest recorded family among the directories (0 where none has a record)."""
    return max((len(recorded(d)) for d in sweep_dirs), default=0)
