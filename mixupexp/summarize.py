"""Summaries of finished runs: `runs.csv` (one row per run), `summary.csv` (one row per configuration), the
same for reading in `summary.md`, and plots.

`python -m mixupexp.summarize DIR [DIR ...]` (re)builds them from every result.json under the given sweep
directories; a multirun writes them into its sweep directory when it ends.

The configuration of a run is its resolved config; the parameters shown are those that differ between the runs
found (plus the augmentation, always), named as on the command line (`augment.alpha`), in the order the sweep
listed their values. Summary rows collapse the seed: n, mean, std, min and max of the test accuracy (%) and the
mean test loss, then confidence intervals of the means (stats.py) and, where the runs hold a baseline
(augment=none), the judgement against it: the configurations sharing a baseline form one family, whose verdicts
rest on Holm-adjusted p-values, with P(improvement) and the seeds needed. With validation accuracies and
several candidates, the one with the best mean validation accuracy is the selected result.
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
from mixupexp.stats import MAX_SEEDS, MIN_SEEDS, PAIRED, SIGNIFICANCE, WELCH, clip_interval, judge_family, mean_ci

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
# Results that older runs (or runs without a validation split) lack; shown after test_loss when any run has them.
OPTIONAL_METRICS = ("test_ece", "val_acc", "val_loss")
FGSM_PREFIX = "fgsm_acc_"
# summary column prefix -> runs column; FGSM columns are added as found.
SUMMARY_METRICS = {"acc": "test_acc", "nll": "test_loss", "ece": "test_ece", "val_acc": "val_acc"}
# Percentages: their t intervals are clipped to [0, 100] (summary.md says so).
PERCENT_METRICS = ("acc", "ece", "val_acc")
DELTA_COLUMNS = ("delta_acc_vs_baseline", "delta_acc_ci95_low", "delta_acc_ci95_high", "delta_acc_p_value",
                 "delta_acc_p_holm", "delta_acc_test", "verdict", "p_improvement", "p_improvement_ci95_low",
                 "p_improvement_ci95_high", "detectable_delta", "seeds_needed", "compared_with", "family_size")
# Kept with all their digits: 4 decimals would print a clear p = 3e-6 as 0.
P_VALUE_COLUMNS = ("delta_acc_p_value", "delta_acc_p_holm")
# Statuses of runs that stopped before finishing but resume from their last checkpoint: `running` is one killed
# without a chance to say so (or still running).
INTERRUPTED = ("interrupted", "running")
# The columns printed by `python -m mixupexp.summarize`; summary.csv and summary.md hold the rest.
CONSOLE_COLUMNS = ("n", "acc_mean", "acc_std", "acc_ci95_low", "acc_ci95_high", "n_failed", "n_interrupted",
                   "delta_acc_vs_baseline", "delta_acc_p_value", "delta_acc_p_holm", "p_improvement", "selected")


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


def summarize_runs(runs: pd.DataFrame, value_order: dict[str, list] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs table, summary table) from `load_runs` output. Rows follow `value_order` (each parameter's values in
    the order the sweep listed them, see sweep_value_order; others sorted), the baseline first."""
    params = parameter_columns(runs)
    group_keys = [c for c in params if c != "seed"]
    table = order_rows(runs[params + result_columns(runs)], params, value_order or {})
    ok = table[table["status"] == "ok"]
    if group_keys:
        grouped = table.groupby(group_keys, dropna=False, sort=False)
        ok_grouped = ok.groupby(group_keys, dropna=False, sort=False)
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
        summary = order_rows(summary, group_keys, value_order or {})
    summary = summary.reset_index(drop=True)
    # Failed runs take part in the comparisons as NaN: they drop their seed's pair, and the others stay paired.
    measured = table.assign(test_acc=table["test_acc"].where(table["status"] == "ok"))
    statistics = [metric_statistics(summary, ok, group_keys), baseline_comparisons(summary, measured, group_keys)]
    summary = pd.concat([summary, *statistics], axis=1)
    selected = select_on_validation(summary)
    if selected is not None:
        summary["selected"] = selected
    # Measurements to 4 decimals for reading; parameters as given (lr 1e-5 and 3e-5 stay apart) and p-values
    # with all their digits.
    rounded = [c for c in summary.columns[len(group_keys):]
               if c not in P_VALUE_COLUMNS and pd.api.types.is_float_dtype(summary[c])]
    summary[rounded] = summary[rounded].round(4)
    return table.reset_index(drop=True), summary


def _same_value(value, listed) -> bool:
    """Whether a table's value is the sweep's listed value (1 and 1.0 alike; lists as tuples)."""
    if isinstance(value, (list, tuple)) or isinstance(listed, (list, tuple)):
        return isinstance(value, (list, tuple)) and isinstance(listed, (list, tuple)) and tuple(value) == tuple(listed)
    if isinstance(value, (int, float)) and isinstance(listed, (int, float)) and not isinstance(listed, bool):
        return float(value) == float(listed)
    return str(value) == str(listed)


def order_rows(frame: pd.DataFrame, keys: list[str], value_order: dict[str, list]) -> pd.DataFrame:
    """`frame` sorted by `keys` in turn: the baseline (augment=none) first; within a key, unset values first, then
    the values `value_order` lists in its order, then any others sorted."""
    sort_keys = pd.DataFrame(index=frame.index)
    sort_keys["baseline"] = (frame["augment"] != "none") if "augment" in frame else False
    for i, key in enumerate(keys):
        listed = value_order.get(key, [])

        def position(value, listed=listed) -> int:
            if not _as_text(value):
                return -1
            return next((j for j, v in enumerate(listed) if _same_value(value, v)), len(listed))

        column = frame[key]
        sort_keys[f"{i}_listed"] = column.map(position)
        try:
            sort_keys[f"{i}_sorted"] = column.rank(method="dense", na_option="top")
        except TypeError:  # mixed types (a list next to a number): sort by the text
            sort_keys[f"{i}_sorted"] = column.map(_as_text).rank(method="dense")
    order = sort_keys.sort_values(list(sort_keys.columns), kind="stable").index
    return frame.loc[order]


def sweep_value_order(sweep_dirs: list[Path]) -> dict[str, list]:
    """The values of each swept parameter in the order the sweeps listed them: from each sweep directory's
    multirun.yaml, the sweeper's params (a preset's sweep) and then the command line's overrides. Parameters
    without a multirun.yaml (or with an unreadable one) are sorted instead."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    parser = OverridesParser.create()
    order: dict[str, list] = {}
    for sweep_dir in sweep_dirs:
        try:
            hydra_cfg = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra
            preset = [f"{k}={v}" for k, v in (hydra_cfg.sweeper.get("params") or {}).items()]
            # The command line first: where it sweeps a key that a preset sweeps too, its values are the ones run.
            overrides = parser.parse_overrides(list(hydra_cfg.overrides.task) + preset)
        except Exception:  # no multirun.yaml, or one this version cannot read: sorted order
            continue
        seen_here = set()
        for override in overrides:
            key = _readable(override.key_or_group.lstrip("+~"))
            if not override.is_sweep_override() or key in seen_here:
                continue
            seen_here.add(key)
            try:
                values = list(override.sweep_iterator())
            except Exception:  # a sweep a plain multirun does not list (an interval for an optimiser)
                continue
            order.setdefault(key, [])
            order[key] += [v for v in values if not any(_same_value(v, known) for known in order[key])]
    return order


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
    """Per summary row: acc_sem and the 95 % CI of the mean accuracy; mean and CI of NLL, ECE, FGSM and validation
    accuracy. Intervals of percentages are clipped to [0, 100]: a t interval knows no bounds."""
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
            percent = name in PERCENT_METRICS or name.startswith(FGSM_PREFIX)
            low, high = clip_interval(ci.low, ci.high) if percent else (ci.low, ci.high)
            record[f"{name}_ci95_low"], record[f"{name}_ci95_high"] = low, high
        records.append(record)
    return pd.DataFrame.from_records(records, index=summary.index)


def _arm(runs: pd.DataFrame) -> tuple[pd.Series, pd.Series | None]:
    return runs["test_acc"], (runs["seed"] if "seed" in runs.columns else None)


def baseline_comparisons(summary: pd.DataFrame, runs: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """Per summary row: accuracy minus that of its baseline (augment=none with the same other parameters), its
    95 % CI and p-value, the Holm-adjusted p-value and verdict, P(improvement) and the seeds advice, from `runs`
    (test_acc NaN where a run did not finish). The rows that share a baseline form one family
    (stats.judge_family). No columns when the runs hold no baseline."""
    is_baseline = summary["augment"] == "none" if "augment" in summary else pd.Series(False, index=summary.index)
    if not is_baseline.any() or is_baseline.all():
        return pd.DataFrame(index=summary.index)
    shared_keys = [k for k in group_keys if k not in ("augment", *IGNORED_BY_NONE)]
    baselines = summary[is_baseline]
    families: dict[int, list[int]] = {}
    for index, row in summary[~is_baseline].iterrows():
        candidates = baselines[_matching(baselines, row, shared_keys)]
        if len(candidates) == 1:
            families.setdefault(candidates.index[0], []).append(index)
    params = summary_parameters(summary)
    records: dict[int, dict] = {}
    for base_index, members in families.items():
        base = summary.loc[base_index]
        arms = [_arm(runs[_matching(runs, summary.loc[i], group_keys)]) for i in members]
        for index, judged in zip(members, judge_family(arms, _arm(runs[_matching(runs, base, group_keys)]))):
            c, p = judged.comparison, judged.improvement
            records[index] = dict(zip(DELTA_COLUMNS, (
                c.delta, c.low, c.high, c.p_value, judged.adjusted_p, c.test, judged.verdict, p.estimate, p.low,
                p.high, judged.detectable, judged.seeds_needed, _configuration(base, params), len(members))))
    return pd.DataFrame.from_records([records.get(i, {}) for i in summary.index], index=summary.index,
                                     columns=DELTA_COLUMNS)


def _family(rows: pd.DataFrame) -> pd.Series:
    """The baseline each row is compared with, as typed; "" where there is none (the rows without a baseline
    form one group of candidates)."""
    return rows["compared_with"].fillna("") if "compared_with" in rows else pd.Series("", index=rows.index)


def select_on_validation(summary: pd.DataFrame) -> pd.Series | None:
    """True for the configuration with the best mean validation accuracy among the candidates (every one but
    the baseline) of each family, where a family holds more than one; None without validation accuracies."""
    if "val_acc_mean" not in summary:
        return None
    is_baseline = summary["augment"] == "none" if "augment" in summary else pd.Series(False, index=summary.index)
    candidates = summary[~is_baseline & summary["val_acc_mean"].notna()]
    selected = pd.Series(False, index=summary.index)
    for _, members in candidates.groupby(_family(candidates), sort=False):
        if len(members) > 1:
            selected[members["val_acc_mean"].idxmax()] = True  # a tie goes to the first in the table's order
    return selected


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


def _percent(share: float) -> str:
    return f"{100 * share:g} %"


def _seeds(seeds: float) -> str:
    return f"more than {MAX_SEEDS}" if seeds == math.inf else f"~{int(seeds)}"


def _compared(row: pd.Series) -> bool:
    return isinstance(row.get("delta_acc_test"), str)


def _detail(row: pd.Series) -> str:
    """`Δ = +1.20 [-0.50, +2.90] points, p = 0.04, p (Holm) = 0.12, paired t-test; P(better) = 0.67 [0.33, 1.00]`"""
    delta = _with_ci(row["delta_acc_vs_baseline"], row["delta_acc_ci95_low"], row["delta_acc_ci95_high"], sign=True)
    if not delta:  # one of the arms has no finished run yet
        return "no Δ: an arm has no finished run"
    detail = f"Δ = {delta} points"
    if not pd.isna(row["delta_acc_p_value"]):
        detail += f", p = {_p_value(row['delta_acc_p_value'])}, p (Holm) = {_p_value(row['delta_acc_p_holm'])}"
    if row["delta_acc_test"] in (PAIRED, WELCH):  # the others are named by the verdict already
        detail += f", {row['delta_acc_test']}"
    if not pd.isna(row["p_improvement"]):
        better = _with_ci(row["p_improvement"], row["p_improvement_ci95_low"], row["p_improvement_ci95_high"])
        detail += f"; P(better) = {better}"
    return detail


def verdict_lines(summary: pd.DataFrame) -> list[str]:
    """One line per configuration compared with a baseline: its verdict on the Holm-adjusted p-value, the numbers
    behind it; then the configuration selected on the validation split, if any (printed at a sweep's end too)."""
    params = summary_parameters(summary)
    lines = []
    for _, row in summary.iterrows():
        if "delta_acc_test" not in summary or row.get("augment") == "none":
            continue
        if not _compared(row):
            lines.append(f"{_configuration(row, params)}: no baseline with the same settings")
            continue
        lines.append(f"{_configuration(row, params)}: {row['verdict']} ({_detail(row)})")
    if "selected" in summary:
        for _, row in summary[summary["selected"]].iterrows():
            lines.append(f"selected on the validation split: {_configuration(row, params)} "
                         f"(validation {_number(row['val_acc_mean'])} %, test {_number(row['acc_mean'])} %)")
    return lines


def _families(summary: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(baseline as typed, its compared configurations) per family, in the table's order."""
    compared = summary[summary.apply(_compared, axis=1)] if "delta_acc_test" in summary else summary.iloc[:0]
    return list(compared.groupby("compared_with", sort=False)) if len(compared) else []


def _seeds_sentence(row: pd.Series, params: list[str]) -> str:
    configuration = _configuration(row, params)
    if pd.isna(row["detectable_delta"]):
        return f"- {configuration}: no spread to size the next runs from ({row['delta_acc_test']})"
    delta = _number(row["delta_acc_vs_baseline"], sign=True)
    now = f"the {row['n']} seeds run now detect |Δ| ≥ {_number(row['detectable_delta'])} points"
    if row["seeds_needed"] == math.inf and row["delta_acc_vs_baseline"] == 0:
        return f"- {configuration}: Δ = {delta} points, nothing to detect; {now}"
    return (f"- {configuration}: to detect Δ = {delta} points with 80 % power, run {_seeds(row['seeds_needed'])} "
            f"seeds per arm; {now}")


def selection_lines(summary: pd.DataFrame) -> list[str]:
    """Which configuration is the result when there are several candidates: chosen on the validation split, or,
    without one, a plain warning that the best test accuracy among them is optimistic."""
    params = summary_parameters(summary)
    is_baseline = summary["augment"] == "none" if "augment" in summary else pd.Series(False, index=summary.index)
    candidates = summary[~is_baseline & (summary["n"] > 0)]
    lines = []
    for baseline, members in candidates.groupby(_family(candidates), sort=False):
        if len(members) < 2:
            continue
        among = f"the {len(members)} configurations" + (f" compared with {baseline}" if baseline else "")
        chosen = members[members["selected"]] if "selected" in members else members.iloc[:0]
        if chosen.empty:
            lines.append(
                f"No validation split: nothing but the test set tells {among} apart, so the one with the best test "
                f"accuracy overstates it (the best of {len(members)} noisy means is the luckiest: the winner's "
                "curse). Hold out a validation split (data.val_size=N) to choose on it and let the test set measure "
                "the choice.")
            continue
        row = chosen.iloc[0]
        text = (f"Selected on the validation split (best mean validation accuracy among {among}): "
                f"**{_configuration(row, params)}**, validation {_number(row['val_acc_mean'])} %. Its test accuracy, "
                f"which played no part in the choice, is the result: "
                f"{_with_ci(row['acc_mean'], row['acc_ci95_low'], row['acc_ci95_high'])} %")
        if _compared(row):
            text += f"; {row['verdict']} ({_detail(row)})"
        lines.append(text + ".")
    return lines


def summary_markdown(summary: pd.DataFrame, fixed: dict | None = None, duplicates: list | None = None) -> str:
    """summary.md: what the runs shared, the summary table for reading (means with 95 % CIs), a verdict per
    configuration, the seeds needed, and which configuration is the result."""
    params = summary_parameters(summary)
    has_delta = "delta_acc_vs_baseline" in summary
    columns = {k: (lambda row, k=k: _as_text(row[k])) for k in params}
    columns["n"] = lambda row: str(row["n"]) + _unfinished(row["n_failed"], row["n_interrupted"])
    columns["accuracy %"] = lambda row: _with_ci(row["acc_mean"], row["acc_ci95_low"], row["acc_ci95_high"])
    if has_delta:
        columns["Δ accuracy vs baseline"] = lambda row: _with_ci(
            row["delta_acc_vs_baseline"], row["delta_acc_ci95_low"], row["delta_acc_ci95_high"], sign=True)
        columns["p"] = lambda row: _p_value(row["delta_acc_p_value"])
        columns["p (Holm)"] = lambda row: _p_value(row["delta_acc_p_holm"])
        columns["test"] = lambda row: row["delta_acc_test"] if _compared(row) else ""
        columns["P(better)"] = lambda row: _with_ci(row["p_improvement"], row["p_improvement_ci95_low"],
                                                     row["p_improvement_ci95_high"])
    fgsm = [c.removesuffix("_mean") for c in summary.columns if c.startswith(FGSM_PREFIX) and c.endswith("_mean")]
    metrics = [("validation accuracy %", "val_acc", 2), ("NLL", "nll", 3), ("ECE %", "ece", 2)]
    metrics += [(f"FGSM {c[len(FGSM_PREFIX):]}/255 %", c, 2) for c in fgsm]
    for title, name, digits in metrics:
        if f"{name}_mean" in summary:
            columns[title] = lambda row, name=name, digits=digits: _with_ci(
                row[f"{name}_mean"], row[f"{name}_ci95_low"], row[f"{name}_ci95_high"], digits)

    unfinished = _unfinished(int(summary["n_failed"].sum()), int(summary["n_interrupted"].sum()))
    intro = (
        f"{_count(int(summary['n'].sum()), 'finished run')}{unfinished} in "
        f"{_count(len(summary), 'configuration')}. Means over seeds with 95 % confidence intervals [low, high] "
        "(t distribution; intervals of percentages clipped to [0, 100]); accuracy, ECE and FGSM accuracy in %, NLL "
        "in nats per image."
    )
    if has_delta:
        intro += (" Δ: accuracy minus the baseline's (augment=none with the same other settings), in points; "
                  "p: two-sided t-test; p (Holm): adjusted for the number of configurations compared with the same "
                  "baseline; P(better): the probability that a run of the configuration beats a run of the baseline "
                  "(0.5 = no effect; paired by seed: the share of seeds it won), with a 95 % bootstrap interval.")
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
    for baseline, members in _families(summary):
        count = len(members)
        lines.append(
            f"The {count} configurations compared with {baseline} form one family: Holm's correction over all "
            f"{count} keeps the chance of any false better/worse verdict among them at {_percent(SIGNIFICANCE)}; "
            "verdicts use p (Holm)." if count > 1
            else f"The configuration compared with {baseline} is a family of one: its p-value needs no correction."
        )
    if has_delta:
        lines += [""] + [f"- {line}" for line in verdict_lines(summary) if not line.startswith("selected ")]
    families = _families(summary)
    if families:
        lines += ["", "## Seeds needed", "",
                  f"From the observed spread (of the per-seed differences where runs are paired by seed, else of "
                  f"the runs), for 80 % power at {_percent(SIGNIFICANCE)} / K, K the configurations sharing the "
                  f"baseline (Holm's strictest step); never fewer than {MIN_SEEDS}.", ""]
        lines += [_seeds_sentence(row, params) for _, members in families for _, row in members.iterrows()]
    selection = selection_lines(summary)
    if selection:
        lines += ["", "## Selection", ""] + selection
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
    runs, summary = summarize_runs(loaded, sweep_value_order(sweep_dirs))
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
    for line in verdict_lines(summary):
        print(line)
    plots = " and plots" if args.plots else ""
    print(f"wrote {(args.out or args.dirs[0]) / 'runs.csv'}, summary.csv, summary.md{plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
