"""Summaries of finished runs: `runs.csv` (one row per run), `summary.csv` (one row per configuration), the
same for reading in `summary.md`, and plots.

`python -m mixupexp.summarize DIR [DIR ...]` (re)builds them from every result.json under the given sweep
directories; a multirun writes them into its sweep directory when it ends.

The configuration of a run is its resolved config; the parameters shown are those that differ between the runs
found (plus the augmentation, always), named as on the command line (`augment.alpha`). Summary rows collapse the
seed: n, mean, std, min and max of the test accuracy (%) and the mean test loss, then confidence intervals of the
means (stats.py) and, where the runs hold a baseline (augment=none), the difference to it with a t-test.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Optional

import pandas as pd

from mixupexp.config import IGNORED_BY_OPTION
from mixupexp.files import atomic_write_text, write_csv, write_json
from mixupexp.identity import SEED, identity, identity_hash
from mixupexp.plots import write_plots
from mixupexp.stats import Comparison, compare_to_baseline, mean_ci, verdict

# Parameters that `augment=none` ignores (its runs have none of them): a configuration's baseline is matched on the
# other parameters.
IGNORED_BY_NONE = IGNORED_BY_OPTION[("augment.name", "none")]
ALWAYS_SHOWN = ("augment",)
# Manifold mixup's block list: a column only when it was swept, not merely because `none` blanks it.
SHOWN_ONLY_WHEN_SWEPT = ("augment.mix_after_blocks",)
RESULT_COLUMNS = ("status", "test_acc", "test_loss", "train_loss", "train_seconds", "wall_seconds", "device",
                  "precision", "versions", "run_dir")
# Results that describe how a run was made rather than what it measured: stated among the fixed settings.
MADE_WITH = ("device", "precision", "versions")
# Results that older runs lack; shown after test_loss when any run has them.
OPTIONAL_METRICS = ("test_ece",)
FGSM_PREFIX = "fgsm_acc_"
# summary column prefix -> runs column; FGSM columns are added as found.
SUMMARY_METRICS = {"acc": "test_acc", "nll": "test_loss", "ece": "test_ece"}
DELTA_COLUMNS = ("delta_acc_vs_baseline", "delta_acc_ci95_low", "delta_acc_ci95_high", "delta_acc_p_value",
                 "delta_acc_test")
# The columns printed by `python -m mixupexp.summarize`; summary.csv and summary.md hold the rest.
# Statuses of runs that stopped before finishing but resume from their last checkpoint: `running` is one killed
# without a chance to say so (or still running).
INTERRUPTED = ("interrupted", "running")
CONSOLE_COLUMNS = ("n", "acc_mean", "acc_std", "acc_ci95_low", "acc_ci95_high", "n_failed", "n_interrupted",
                   "delta_acc_vs_baseline", "delta_acc_p_value", "delta_acc_test")


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
    `frame.attrs["duplicates"]` as (left out, kept) pairs of run directories."""
    records, kept = [], {}
    duplicates: list[tuple[str, str]] = []
    for path in find_results(dirs):
        try:
            result = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # a result being written right now; the next summary sees it
        config = result.get("config", {})
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
            if first["status"] != "ok" and flat["status"] == "ok":  # a finished run beats an unfinished one
                duplicates.append((first["run_dir"], flat["run_dir"]))
                records[kept[key]] = flat
            else:
                duplicates.append((flat["run_dir"], first["run_dir"]))
            continue
        kept[key] = len(records)
        records.append(flat)
    if not records:
        raise SummaryError(f"no runs (result.json files) found under {', '.join(map(str, dirs))}")
    frame = pd.DataFrame.from_records(records)
    frame.attrs["duplicates"] = duplicates
    return frame


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


def parameter_columns(runs: pd.DataFrame) -> list[str]:
    """Config keys whose value differs between runs (the swept parameters), plus `augment`."""
    results = result_columns(runs)
    config_keys = [c for c in runs.columns if c not in results]
    mixing = runs[runs["augment"] != "none"] if "augment" in runs else runs

    def differs(c: str) -> bool:
        return (mixing if c in SHOWN_ONLY_WHEN_SWEPT else runs)[c].astype(str).nunique(dropna=False) > 1

    varying = [c for c in config_keys if differs(c)]
    shown = [c for c in ALWAYS_SHOWN if c in runs.columns and c not in varying]
    # seed last: it is the one collapsed in the summary
    return shown + sorted(varying, key=lambda c: c == "seed")


def summarize_runs(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs table, summary table) from `load_runs` output."""
    params = parameter_columns(runs)
    group_keys = [c for c in params if c != "seed"]
    # The baseline (augment=none) first, then by the parameters in order.
    table = runs[params + result_columns(runs)].assign(_baseline_last=runs["augment"] != "none")
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
        "n_failed": grouped["status"].apply(lambda s: int((~s.isin(["ok", *INTERRUPTED])).sum())),
        "n_interrupted": grouped["status"].apply(lambda s: int(s.isin(INTERRUPTED).sum())),
    })
    summary["n"] = summary["n"].fillna(0).astype(int)
    summary = summary.reset_index()
    if not group_keys:
        summary = summary.drop(columns="index")
    else:
        order = summary["augment"] != "none" if "augment" in summary else pd.Series(False, index=summary.index)
        summary = summary.iloc[order.argsort(kind="stable")]
    summary = summary.reset_index(drop=True)
    statistics = [metric_statistics(summary, ok, group_keys), baseline_comparisons(summary, ok, group_keys)]
    summary = pd.concat([summary, *statistics], axis=1)
    # p-values keep their digits: 4 decimals would print a clear p = 3e-6 as 0.
    rounded = summary.drop(columns=["delta_acc_p_value"], errors="ignore").round(4)
    summary[rounded.columns] = rounded
    return table.reset_index(drop=True), summary


def _as_text(value) -> str:
    # The baseline's blank α and ratio are None in the runs table and NaN after grouping: both mean "unset".
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _matching(frame: pd.DataFrame, row: pd.Series, keys: list[str]) -> pd.Series:
    """Rows of `frame` whose `keys` equal those of `row`."""
    mask = pd.Series(True, index=frame.index)
    for key in keys:
        mask &= frame[key].map(_as_text) == _as_text(row[key])
    return mask


def metric_statistics(summary: pd.DataFrame, ok: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """Per summary row: acc_sem and the 95 % CI of the mean accuracy; mean and CI of NLL, ECE and FGSM accuracy."""
    metrics = {name: column for name, column in SUMMARY_METRICS.items() if column in ok.columns}
    metrics.update({column: column for column in fgsm_columns(ok)})
    records = []
    for _, row in summary.iterrows():
        runs = ok[_matching(ok, row, group_keys)]
        record = {}
        for name, column in metrics.items():
            ci = mean_ci(runs[column])
            if name == "acc":
                record["acc_sem"] = ci.sem  # acc_mean is already a column
            else:
                record[f"{name}_mean"] = ci.mean
            record[f"{name}_ci95_low"], record[f"{name}_ci95_high"] = ci.low, ci.high
        records.append(record)
    return pd.DataFrame.from_records(records, index=summary.index)


def baseline_comparisons(summary: pd.DataFrame, ok: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """Per summary row: accuracy minus that of the baseline (augment=none with the same other parameters), its
    95 % CI, the t-test's p-value and which test. No columns when the runs hold no baseline to compare with."""
    is_baseline = summary["augment"] == "none" if "augment" in summary else pd.Series(False, index=summary.index)
    if not is_baseline.any() or is_baseline.all():
        return pd.DataFrame(index=summary.index)
    shared_keys = [k for k in group_keys if k not in ("augment", *IGNORED_BY_NONE)]
    baselines = summary[is_baseline]
    records = []
    for index, row in summary.iterrows():
        candidates = baselines[_matching(baselines, row, shared_keys)]
        if is_baseline[index] or len(candidates) != 1:
            records.append({})
            continue
        runs = ok[_matching(ok, row, group_keys)]
        base = ok[_matching(ok, candidates.iloc[0], group_keys)]
        seeds = (runs["seed"], base["seed"]) if "seed" in ok.columns else (None, None)
        comparison = compare_to_baseline(runs["test_acc"], base["test_acc"], *seeds)
        records.append(dict(zip(DELTA_COLUMNS, (comparison.delta, comparison.low, comparison.high,
                                                comparison.p_value, comparison.test))))
    return pd.DataFrame.from_records(records, index=summary.index, columns=DELTA_COLUMNS)


def summary_parameters(summary: pd.DataFrame) -> list[str]:
    """The configuration columns of a summary table: those before `n`."""
    return list(summary.columns[: summary.columns.get_loc("n")])


def _number(value: float, digits: int = 2, sign: bool = False) -> str:
    return "" if pd.isna(value) else f"{value:{'+' if sign else ''}.{digits}f}"


def _with_ci(mean: float, low: float, high: float, digits: int = 2, sign: bool = False) -> str:
    """`73.10 [70.48, 75.72]`; the mean alone where there is no interval (n < 2)."""
    text = _number(mean, digits, sign)
    if text and not pd.isna(low):
        text += f" [{_number(low, digits, sign)}, {_number(high, digits, sign)}]"
    return text


def _p_value(p: float) -> str:
    return "" if pd.isna(p) else f"{p:.3g}"


def _configuration(row: pd.Series, params: list[str]) -> str:
    """`augment=mixup augment.alpha=0.2`: the row's parameters as typed on the command line."""
    return " ".join(f"{k}={_as_text(row[k])}" for k in params if _as_text(row[k])) or "all runs"


def _unfinished(failed: int, interrupted: int) -> str:
    """` (1 failed, 2 interrupted)`; empty when every run finished."""
    parts = [f"{n} {what}" for n, what in ((failed, "failed"), (interrupted, "interrupted")) if n]
    return f" ({', '.join(parts)})" if parts else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def summary_markdown(summary: pd.DataFrame, fixed: dict | None = None, duplicates: list | None = None) -> str:
    """summary.md: what the runs shared, the summary table for reading (means with 95 % CIs) and a verdict per
    configuration."""
    params = summary_parameters(summary)
    has_delta = "delta_acc_vs_baseline" in summary
    columns = {k: (lambda row, k=k: _as_text(row[k])) for k in params}
    columns["n"] = lambda row: str(row["n"]) + _unfinished(row["n_failed"], row["n_interrupted"])
    columns["accuracy %"] = lambda row: _with_ci(row["acc_mean"], row["acc_ci95_low"], row["acc_ci95_high"])
    if has_delta:
        columns["Δ accuracy vs baseline"] = lambda row: _with_ci(
            row["delta_acc_vs_baseline"], row["delta_acc_ci95_low"], row["delta_acc_ci95_high"], sign=True)
        columns["p"] = lambda row: _p_value(row["delta_acc_p_value"])
        columns["test"] = lambda row: row["delta_acc_test"] if isinstance(row["delta_acc_test"], str) else ""
    fgsm = [c.removesuffix("_mean") for c in summary.columns if c.startswith(FGSM_PREFIX) and c.endswith("_mean")]
    metrics = [("NLL", "nll", 3), ("ECE %", "ece", 2)] + [(f"FGSM {c[len(FGSM_PREFIX):]}/255 %", c, 2) for c in fgsm]
    for title, name, digits in metrics:
        if f"{name}_mean" in summary:
            columns[title] = lambda row, name=name, digits=digits: _with_ci(
                row[f"{name}_mean"], row[f"{name}_ci95_low"], row[f"{name}_ci95_high"], digits)

    unfinished = _unfinished(int(summary["n_failed"].sum()), int(summary["n_interrupted"].sum()))
    intro = (
        f"{_count(int(summary['n'].sum()), 'finished run')}{unfinished} in "
        f"{_count(len(summary), 'configuration')}. Means over seeds with 95 % confidence intervals [low, high] "
        "(t distribution); accuracy, ECE and FGSM accuracy in %, NLL in nats per image."
    )
    if has_delta:
        intro += (" Δ: accuracy minus the baseline's (augment=none with the same other settings), in points; "
                  "p: two-sided t-test.")
    if fixed:
        intro += f"\n\nFixed across all runs: {fixed_settings_text(fixed)}."
    if duplicates:
        intro += f"\n\n{duplicates_line(duplicates)}."
    lines = [
        "# Summary",
        "",
        intro,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(" --- " for _ in columns) + "|",
    ]
    lines += ["| " + " | ".join(cell(row) for cell in columns.values()) + " |" for _, row in summary.iterrows()]
    lines += ["", "## Verdicts", ""]
    if not has_delta:
        only_baseline = "augment" in summary and (summary["augment"] == "none").all()
        lines.append("Only baseline runs (augment=none): nothing to compare." if only_baseline
                     else "No baseline (augment=none) to compare with among these runs.")
    for _, row in summary.iterrows():
        if not has_delta or row.get("augment") == "none":
            continue
        if not isinstance(row["delta_acc_test"], str):
            lines.append(f"- {_configuration(row, params)}: no baseline with the same settings")
            continue
        comparison = Comparison(row["delta_acc_vs_baseline"], row["delta_acc_ci95_low"], row["delta_acc_ci95_high"],
                                row["delta_acc_p_value"], row["delta_acc_test"])
        detail = f"Δ = {_with_ci(comparison.delta, comparison.low, comparison.high, sign=True)} points"
        if not pd.isna(comparison.p_value):
            detail += f", p = {_p_value(comparison.p_value)}, {comparison.test}"
        lines.append(f"- {_configuration(row, params)}: {verdict(comparison)} ({detail})")
    return "\n".join(lines) + "\n"


def write_summary(sweep_dirs: list[Path], out_dir: Path, plots: bool = True,
                  require_finished: bool = False) -> pd.DataFrame:
    """Write runs.csv, summary.csv, summary_settings.json (what all runs shared), summary.md and (with `plots`) the
    PNG plots into out_dir; return the summary, its `attrs["duplicates"]` naming runs counted once although found
    more than once. With `require_finished`, SummaryError unless some run finished."""
    loaded = load_runs(sweep_dirs)
    duplicates = loaded.attrs.get("duplicates", [])
    if require_finished and not (loaded["status"] == "ok").any():
        raise SummaryError(f"none of the {len(loaded)} runs under {', '.join(map(str, sweep_dirs))} finished")
    fixed = fixed_settings(loaded)
    runs, summary = summarize_runs(loaded)
    out_dir = Path(out_dir)
    write_csv(out_dir / "runs.csv", runs)
    write_csv(out_dir / "summary.csv", summary)
    write_json(out_dir / "summary_settings.json", {"fixed": fixed, "duplicates_left_out": duplicates})
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary, fixed, duplicates))
    if plots:
        write_plots(summary, runs, summary_parameters(summary), out_dir, caption=fixed_settings_text(fixed))
    summary.attrs["duplicates"] = duplicates
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixupexp.summarize",
        description="Summarise the runs under one or more sweep directories into runs.csv, summary.csv, summary.md "
                    "and PNG plots.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep (or run) directories to collect result.json from")
    parser.add_argument("--out", type=Path, default=None, help="where to write the summary (default: the first DIR)")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write no PNG plots")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if not d.is_dir():
            print(f"error: {d} is not a directory", file=sys.stderr)
            return 2
    try:
        summary = write_summary(args.dirs, args.out or args.dirs[0], plots=args.plots)
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary.attrs["duplicates"]:
        print(duplicates_line(summary.attrs["duplicates"]))
    shown = summary_parameters(summary) + [c for c in CONSOLE_COLUMNS if c in summary]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    plots = " and plots" if args.plots else ""
    print(f"wrote {(args.out or args.dirs[0]) / 'runs.csv'}, summary.csv, summary.md{plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
