"""Summaries of finished runs: `runs.csv` (one row per run) and `summary.csv` (one row per configuration).

`python -m mixupexp.summarize DIR [DIR ...]` (re)builds both from every result.json under the given sweep
directories; a multirun writes them into its sweep directory when it ends.

The configuration of a run is its resolved config; the parameters shown are those that differ between the runs
found (plus the augmentation, always), named as on the command line (`augment.alpha`). Summary rows collapse the
seed: n, mean, std, min and max of the test accuracy (%) and the mean test loss.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from mixupexp.files import write_csv

# Parameters that `augment=none` ignores: blanked so that every `none` run is one baseline configuration.
IGNORED_BY_NONE = ("augment.alpha", "augment.ratio")
ALWAYS_SHOWN = ("augment",)
RESULT_COLUMNS = ("status", "test_acc", "test_loss", "train_loss", "train_seconds", "wall_seconds", "device", "run_dir")


class SummaryError(RuntimeError):
    pass


def _readable(key: str) -> str:
    """`augment.name` -> `augment`: the name users type on the command line."""
    return key[: -len(".name")] if key.endswith(".name") else key


def find_results(dirs: list[Path]) -> list[Path]:
    return sorted(p for d in dirs for p in Path(d).rglob("result.json"))


def load_runs(dirs: list[Path]) -> pd.DataFrame:
    """One row per run found under `dirs`: its flattened config, then its results."""
    records = []
    for path in find_results(dirs):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a result being written right now; the next summary sees it
        flat = pd.json_normalize(result.get("config", {}), sep=".").iloc[0].to_dict() if result.get("config") else {}
        flat = {_readable(k): (tuple(v) if isinstance(v, list) else v) for k, v in flat.items()}
        if flat.get("augment") == "none":
            flat.update({k: None for k in IGNORED_BY_NONE if k in flat})
        flat.update({k: result.get(k) for k in RESULT_COLUMNS if k != "run_dir"})
        flat["run_dir"] = str(path.parent)
        records.append(flat)
    if not records:
        raise SummaryError(f"no runs (result.json files) found under {', '.join(map(str, dirs))}")
    return pd.DataFrame.from_records(records)


def parameter_columns(runs: pd.DataFrame) -> list[str]:
    """Config keys whose value differs between runs (the swept parameters), plus `augment`."""
    config_keys = [c for c in runs.columns if c not in RESULT_COLUMNS]
    varying = [c for c in config_keys if runs[c].astype(str).nunique(dropna=False) > 1]
    shown = [c for c in ALWAYS_SHOWN if c in runs.columns and c not in varying]
    # seed last: it is the one collapsed in the summary
    return shown + sorted(varying, key=lambda c: c == "seed")


def summarize_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs table, summary table) from `load_runs` output."""
    params = parameter_columns(runs)
    group_keys = [c for c in params if c != "seed"]
    # The baseline (augment=none) first, then by the parameters in order.
    table = runs[params + list(RESULT_COLUMNS)].assign(_baseline_last=runs["augment"] != "none")
    table = table.sort_values(["_baseline_last", *params], na_position="first", kind="stable").drop(columns="_baseline_last")
    ok = table[table["status"] == "ok"]
    if group_keys:
        grouped = table.groupby(group_keys, dropna=False, sort=True)
        ok_grouped = ok.groupby(group_keys, dropna=False, sort=True)
    else:  # every run has the same configuration
        grouped = table.groupby(lambda _: 0)
        ok_grouped = ok.groupby(lambda _: 0)
    summary = pd.DataFrame({
        "n": ok_grouped["test_acc"].count(),
        "acc_mean": ok_grouped["test_acc"].mean(),
        "acc_std": ok_grouped["test_acc"].std(ddof=1),
        "acc_min": ok_grouped["test_acc"].min(),
        "acc_max": ok_grouped["test_acc"].max(),
        "test_loss_mean": ok_grouped["test_loss"].mean(),
        "n_failed": grouped["status"].apply(lambda s: int((s != "ok").sum())),
    })
    summary["n"] = summary["n"].fillna(0).astype(int)
    summary = summary.reset_index()
    if not group_keys:
        summary = summary.drop(columns="index")
    else:
        order = summary["augment"] != "none" if "augment" in summary else pd.Series(False, index=summary.index)
        summary = summary.iloc[order.argsort(kind="stable")]
    return table.reset_index(drop=True), summary.reset_index(drop=True).round(4)


def write_summary(sweep_dirs: list[Path], out_dir: Path) -> pd.DataFrame:
    """Write runs.csv and summary.csv into out_dir; return the summary table."""
    runs, summary = summarize_runs(load_runs(sweep_dirs))
    write_csv(Path(out_dir) / "runs.csv", runs)
    write_csv(Path(out_dir) / "summary.csv", summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixupexp.summarize",
        description="Summarise the runs under one or more sweep directories into runs.csv and summary.csv.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep (or run) directories to collect result.json from")
    parser.add_argument("--out", type=Path, default=None, help="where to write the CSVs (default: the first DIR)")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if not d.is_dir():
            print(f"error: {d} is not a directory", file=sys.stderr)
            return 2
    try:
        summary = write_summary(args.dirs, args.out or args.dirs[0])
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {(args.out or args.dirs[0]) / 'runs.csv'} and summary.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
