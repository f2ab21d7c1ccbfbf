"""Collecting runs: every result.json under the sweep directories, one row per run (its identity, seed and results), each (identity, seed) counted once; and what all runs shared."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from mixupexp.records.identity import SEED, identity, identity_hash
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import RunStatus

RESULT_COLUMNS = ("status", "test_acc", "test_loss", "train_loss", "train_seconds", "wall_seconds", "device",
                  "precision", "versions", "run_dir")


# Results that describe how a run was made rather than what it measured: stated among the fixed settings.
MADE_WITH = ("device", "precision", "versions")


# Results that older runs (or runs without a validation split) lack; shown after test_loss when any run has them.
OPTIONAL_METRICS = ("test_ece", "val_acc", "val_loss", "test_images")


FGSM_PREFIX = "fgsm_acc_"




class SummaryError(RuntimeError):
    pass


def _readable(key: str) -> str:
    """`augment.name` -> `augment`: the name users type on the command line."""
    return key[: -len(".name")] if key.endswith(".name") else key


def find_results(dirs: list[Path]) -> list[Path]:
    """Every result.json under `dirs`: the directories in the order given, each one's files sorted."""
    return [p for d in dirs for p in sorted(Path(d).rglob("result.json"))]


def _versions(result: dict) -> Optional[str]:
    versions = result.get("versions")
    return ", ".join(f"{k} {v}" for k, v in versions.items()) if isinstance(versions, dict) else None


def load_runs(dirs: list[Path]) -> pd.DataFrame:
    """One row per run found under `dirs`: its identity (identity.py; the seed apart), its seed, then its results.

    A run is counted once: where several result.json files hold the same identity and seed (two sweeps that share
    a configuration, a directory copied), the finished one found first is kept, and the others are listed in
    `frame.attrs["duplicates"]` as (left out, kept) pairs of run directories. A result.json that cannot be a
    run's record (writes are atomic, so it was damaged or edited by hand) is never counted: it is listed in
    `frame.attrs["left_out"]` as a (file, why) pair."""
    records, kept = [], {}
    duplicates: list[tuple[str, str]] = []
    left_out: list[tuple[str, str]] = []
    for path in find_results(dirs):
        try:
            result = read_result(path)
        except UnreadableResult as e:
            left_out.append((str(path), e.problem.removeprefix("is ")))
            continue
        if result is None:  # removed since it was found
            continue
        config = result["config"]
        ident = identity(config)
        flat = {_readable(k): (tuple(v) if isinstance(v, list) else v) for k, v in ident.items()}
        flat[SEED] = config.get(SEED)
        flat.update({k: result.get(k) for k in RESULT_COLUMNS if k not in ("run_dir", "versions")})
        flat["versions"] = _versions(result)
        flat.update({k: v for k, v in result.items() if k in OPTIONAL_METRICS or k.startswith(FGSM_PREFIX)})
        flat["run_dir"] = str(path.parent)
        key = (identity_hash(ident), repr(flat[SEED]))
        if key in kept:
            first = records[kept[key]]
            if first["status"] != RunStatus.OK and flat["status"] == RunStatus.OK:  # a finished run beats an unfinished one
                duplicates.append((first["run_dir"], flat["run_dir"]))
                records[kept[key]] = flat
            else:
                duplicates.append((flat["run_dir"], first["run_dir"]))
            continue
        kept[key] = len(records)
        records.append(flat)
    if not records:
        unreadable = f" ({'; '.join(left_out_lines(left_out))})" if left_out else ""
        raise SummaryError(f"no runs (result.json files) found under {', '.join(map(str, dirs))}{unreadable}")
    frame = pd.DataFrame.from_records(records)
    frame.attrs["duplicates"] = duplicates
    frame.attrs["left_out"] = left_out
    return frame


def left_out_lines(left_out: list[tuple[str, str]]) -> list[str]:
    """`left out: DIR/result.json (not valid JSON)`, one per result.json that could not be counted."""
    return [f"left out: {path} ({why})" for path, why in left_out]


def duplicates_line(duplicates: list[tuple[str, str]]) -> str:
    """One line naming the runs counted once although found more than once."""
    pairs = "; ".join(f"{dropped} (same run as {kept})" for dropped, kept in duplicates)
    return f"{len(duplicates)} duplicate run{'s' * (len(duplicates) != 1)} left out: {pairs}"


def fixed_settings(runs: pd.DataFrame) -> dict[str, object]:
    """What every run shared: each config key with one value in all runs (data, model, epochs, optimizer, ...),
    and the device, precision and versions they were made with (several values listed where they differ)."""
    results = set(result_columns(runs))
    fixed = {}
    for column in runs.columns:
        if column in results or column == SEED:
            continue
        values = runs[column]
        if values.notna().all() and values.astype(str).nunique() == 1:
            value = values.iloc[0]
            fixed[column] = list(value) if isinstance(value, tuple) else getattr(value, "item", lambda: value)()
    for column in MADE_WITH:
        if column in runs:
            values = sorted(runs[column].dropna().astype(str).unique())
            if values:
                fixed[column] = values[0] if len(values) == 1 else values
    return fixed


def fixed_settings_text(fixed: dict[str, object]) -> str:
    """`data=synthetic (data.num_train=2000, ...); model=simple_cnn (...); trainer.epochs=3; ...; device: cpu`."""
    groups: dict[str, list[str]] = {}
    for key, value in fixed.items():
        if key in MADE_WITH:
            continue
        groups.setdefault(key.split(".")[0], []).append(f"{key}={_as_text(value)}")
    parts = []
    for group, items in groups.items():
        head = next((item for item in items if item.startswith(f"{group}=")), None)
        rest = [item for item in items if item != head]
        parts.append(f"{head} ({', '.join(rest)})" if head and rest else head or ", ".join(rest))
    parts += [f"{key}: {_as_text(fixed[key])}" for key in MADE_WITH if key in fixed]
    return "; ".join(parts)


def fgsm_columns(runs: pd.DataFrame) -> list[str]:
    """`fgsm_acc_<eps>` columns, weakest attack first."""
    return sorted((c for c in runs.columns if c.startswith(FGSM_PREFIX)), key=lambda c: float(c[len(FGSM_PREFIX):]))


def result_columns(runs: pd.DataFrame) -> list[str]:
    """RESULT_COLUMNS with the optional metrics that any run has, after test_loss."""
    extra = [c for c in OPTIONAL_METRICS if c in runs.columns] + fgsm_columns(runs)
    at = RESULT_COLUMNS.index("test_loss") + 1
    return [*RESULT_COLUMNS[:at], *extra, *RESULT_COLUMNS[at:]]


def _as_text(value) -> str:
    # The baseline's blank α and ratio are None in the runs table and NaN after grouping: both mean "unset".
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


BASELINE = "none"  # augment=none: the arm every configuration is compared with


def is_baseline_row(frame: pd.DataFrame) -> pd.Series:
    """True for the rows (runs or configurations) of the baseline, augment=none; none of them where the frame has
    no augment column."""
    return frame["augment"] == BASELINE if "augment" in frame else pd.Series(False, index=frame.index)
