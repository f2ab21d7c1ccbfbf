"""The summary table: one row per configuration (seeds collapsed), with the statistics of each metric and the comparison with its baseline."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import integrate, stats

from mixupexp.analysis.collect import (
    FGSM_PREFIX,
    _as_text,
    _readable,
    fgsm_columns,
    is_baseline_row,
    result_columns,
)
from mixupexp.analysis.stats import clip_interval, judge_family, mean_ci
from mixupexp.config.options import option
from mixupexp.records.status import UNFINISHED, RunStatus

# Parameters that `augment=none` ignores (its runs have none of them): a configuration's baseline is matched on the
# other parameters.
IGNORED_BY_NONE = option("augment", "none").ignores
ALWAYS_SHOWN = ("augment",)
# Manifold mixup's block list: a column only when it was swept, not merely because `none` blanks it.
SHOWN_ONLY_WHEN_SWEPT = ("augment.mix_after_blocks",)
# summary column prefix -> runs column; FGSM columns are added as found.
SUMMARY_METRICS = {"acc": "test_acc", "nll": "test_loss", "ece": "test_ece", "val_acc": "val_acc"}
# Percentages: their t intervals are clipped to [0, 100] (summary.md says so).
PERCENT_METRICS = ("acc", "ece", "val_acc")
DELTA_COLUMNS = ("delta_acc_vs_baseline", "delta_acc_ci95_low", "delta_acc_ci95_high", "delta_acc_p_value",
                 "delta_acc_p_holm", "delta_acc_test", "verdict", "p_improvement", "p_improvement_ci95_low",
                 "p_improvement_ci95_high", "detectable_delta", "seeds_needed", "compared_with", "family_size",
                 # the runs Δ rests on (pairs, or the smaller arm), and why it is unpaired where it is
                 "delta_acc_n", "delta_acc_note",
                 # Δ at 1 - 5 % / family size: every such interval of the family holds at once (Bonferroni)
                 "delta_acc_simultaneous_low", "delta_acc_simultaneous_high", "delta_acc_simultaneous_confidence",
                 "p_improvement_kind")
# Families of comparisons whose verdicts share one error budget: every comparison of the summary (the default:
# the error rate holds over everything summary.md states), or the comparisons with each baseline.
FAMILIES = ("summary", "baseline")
# The data's resolution: a run's accuracy is k / N_test * 100, so accuracies differ by multiples of 100 / N_test
# points; degenerate cases (no spread) are judged on it. Test-set sizes of the data sets that have a fixed one.
KNOWN_TEST_IMAGES = {"cifar10": 10_000, "svhn": 26_032}


# Kept with all their digits: 4 decimals would print a clear p = 3e-6 as 0.
P_VALUE_COLUMNS = ("delta_acc_p_value", "delta_acc_p_holm")


def parameter_columns(runs: pd.DataFrame) -> list[str]:
    """Config keys whose value differs between runs (the swept parameters), plus `augment`."""
    results = result_columns(runs)
    config_keys = [c for c in runs.columns if c not in results]
    mixing = runs[~is_baseline_row(runs)]

    def differs(c: str) -> bool:
        return (mixing if c in SHOWN_ONLY_WHEN_SWEPT else runs)[c].astype(str).nunique(dropna=False) > 1

    varying = [c for c in config_keys if differs(c)]
    shown = [c for c in ALWAYS_SHOWN if c in runs.columns and c not in varying]
    # seed last: it is the one collapsed in the summary
    return shown + sorted(varying, key=lambda c: c == "seed")


def summarize_runs(runs: pd.DataFrame, value_order: dict[str, list] | None = None,
                   families: str = "summary") -> tuple[pd.DataFrame, pd.DataFrame]:
    """(runs table, summary table) from `load_runs` output. Rows follow `value_order` (each parameter's values in
    the order the sweep listed them, see sweep_value_order; others sorted), the baseline first. `families`: which
    comparisons share one error budget (baseline_comparisons)."""
    params = parameter_columns(runs)
    group_keys = [c for c in params if c != "seed"]
    table = order_rows(runs[params + result_columns(runs)], params, value_order or {})
    ok = table[table["status"] == RunStatus.OK]
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
        "n_failed": grouped["status"].apply(lambda s: int((~s.isin([RunStatus.OK, *UNFINISHED])).sum())),
        "n_interrupted": grouped["status"].apply(lambda s: int(s.isin(UNFINISHED).sum())),
    })
    summary["n"] = summary["n"].fillna(0).astype(int)
    summary = summary.reset_index()
    if not group_keys:
        summary = summary.drop(columns="index")
    else:
        summary = order_rows(summary, group_keys, value_order or {})
    summary = summary.reset_index(drop=True)
    # Failed runs take part in the comparisons as NaN: they drop their seed's pair, and the others stay paired.
    measured = table.assign(test_acc=table["test_acc"].where(table["status"] == RunStatus.OK))
    statistics = [metric_statistics(summary, ok, group_keys),
                  baseline_comparisons(summary, measured, group_keys, families)]
    summary = pd.concat([summary, *statistics], axis=1)
    selected = select_on_validation(summary)
    if selected is not None:
        summary["selected"] = selected
        summary = pd.concat([summary, selection_bias(summary, ok, group_keys)], axis=1)
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
    sort_keys["baseline"] = ~is_baseline_row(frame)
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


def _resolution(runs: pd.DataFrame) -> float | None:
    """100 / N_test points where the runs were measured on one test-set size (recorded as `test_images`, else known
    from the data's config); None where it is unknown (then a float tolerance judges ties)."""
    sizes = runs["test_images"].dropna().unique() if "test_images" in runs else []
    if len(sizes) == 0:
        data = runs["data"].dropna().unique() if "data" in runs else []
        if len(data) == 1 and data[0] == "synthetic" and "data.num_test" in runs:
            sizes = runs["data.num_test"].dropna().unique()
        elif len(data) == 1 and data[0] in KNOWN_TEST_IMAGES:
            sizes = [KNOWN_TEST_IMAGES[data[0]]]
    return 100 / float(sizes[0]) if len(sizes) == 1 and sizes[0] > 0 else None


def baseline_comparisons(summary: pd.DataFrame, runs: pd.DataFrame, group_keys: list[str],
                         families: str = "summary") -> pd.DataFrame:
    """Per summary row: accuracy minus that of its baseline (augment=none with the same other parameters), its
    95 % CI and p-value, the Holm-adjusted p-value and verdict, the simultaneous interval that matches it,
    P(improvement) and the seeds advice, from `runs` (test_acc NaN where a run did not finish). Every comparison
    of the summary forms one family by default (`families="baseline"`: one family per baseline); see
    stats.judge_family. No columns when the runs hold no baseline."""
    if families not in FAMILIES:
        raise ValueError(f"families={families!r} is not one of {', '.join(FAMILIES)}")
    is_baseline = is_baseline_row(summary)
    if not is_baseline.any() or is_baseline.all():
        return pd.DataFrame(index=summary.index)
    shared_keys = [k for k in group_keys if k not in ("augment", *IGNORED_BY_NONE)]
    baselines = summary[is_baseline]
    compared: list[tuple[int, int]] = []  # (row, its baseline's row)
    for index, row in summary[~is_baseline].iterrows():
        candidates = baselines[_matching(baselines, row, shared_keys)]
        if len(candidates) == 1:
            compared.append((index, candidates.index[0]))
    params = summary_parameters(summary)
    arm_runs = {i: runs[_matching(runs, summary.loc[i], group_keys)] for pair in compared for i in pair}
    judged_all = judge_family(
        [(_arm(arm_runs[i]), _arm(arm_runs[b])) for i, b in compared],
        groups=[b for _, b in compared] if families == "baseline" else None,
        resolution=[_resolution(pd.concat([arm_runs[i], arm_runs[b]])) for i, b in compared],
    )
    records: dict[int, dict] = {}
    for (index, base_index), judged in zip(compared, judged_all):
        c, p = judged.comparison, judged.improvement
        records[index] = dict(zip(DELTA_COLUMNS, (
            c.delta, c.low, c.high, c.p_value, judged.adjusted_p, c.test, judged.verdict, p.estimate, p.low,
            p.high, judged.detectable, judged.seeds_needed, _configuration(summary.loc[base_index], params),
            judged.family_size, c.n, c.note, judged.simultaneous_low, judged.simultaneous_high,
            judged.simultaneous_confidence, p.kind)))
    frame = pd.DataFrame.from_records([records.get(i, {}) for i in summary.index], index=summary.index,
                                      columns=DELTA_COLUMNS)
    for column in ("family_size", "delta_acc_n"):  # counts: whole numbers in summary.csv, blank where untested
        frame[column] = frame[column].astype("Int64")
    return frame


def _family(rows: pd.DataFrame) -> pd.Series:
    """The baseline each row is compared with, as typed; "" where there is none (the rows without a baseline
    form one group of candidates)."""
    return rows["compared_with"].fillna("") if "compared_with" in rows else pd.Series("", index=rows.index)


def select_on_validation(summary: pd.DataFrame) -> pd.Series | None:
    """True for the configuration with the best mean validation accuracy among the candidates (every one but
    the baseline) of each family, where a family holds more than one; None without validation accuracies."""
    if "val_acc_mean" not in summary:
        return None
    is_baseline = is_baseline_row(summary)
    candidates = summary[~is_baseline & summary["val_acc_mean"].notna()]
    selected = pd.Series(False, index=summary.index)
    for _, members in candidates.groupby(_family(candidates), sort=False):
        if len(members) > 1:
            selected[members["val_acc_mean"].idxmax()] = True  # a tie goes to the first in the table's order
    return selected


def expected_maximum(k: int) -> float:
    """E[max of k independent standard normal draws] (0 for k = 1; 1.4236 for k = 8), by numerical integration of
    k z phi(z) Phi(z)^(k-1)."""
    value, _ = integrate.quad(lambda z: k * z * stats.norm.pdf(z) * stats.norm.cdf(z) ** (k - 1), -np.inf, np.inf)
    return float(value)


def selection_bias(summary: pd.DataFrame, ok: pd.DataFrame, group_keys: list[str]) -> pd.DataFrame:
    """For each selected row: the pooled sd of its family's candidates' validation accuracies (`val_acc_sd_pooled`)
    and a bound on how much its test accuracy overstates its truth (`selection_bias_bound`, points).

    Chosen as the best of K candidates' mean validation accuracies over n seeds, a configuration is the luckiest
    of K: if all were equally good, the winner's validation mean exceeds the truth by sd / sqrt(n) * E[max of K
    normals] on average. Its test accuracy shares the luck as far as a run's validation and test accuracy share
    its quality, so its expected bias lies between 0 (independent) and that value (the same luck): the bound."""
    columns = ("val_acc_sd_pooled", "selection_bias_bound")
    frame = pd.DataFrame(np.nan, index=summary.index, columns=columns)
    candidates = summary[~is_baseline_row(summary) & summary["val_acc_mean"].notna()]
    for _, members in candidates.groupby(_family(candidates), sort=False):
        chosen = members.index[members["selected"].astype(bool)]
        if len(chosen) == 0:
            continue
        runs = [ok[_matching(ok, summary.loc[i], group_keys)]["val_acc"].dropna() for i in members.index]
        variances = [r.var(ddof=1) for r in runs if len(r) > 1]
        n = min(len(r) for r in runs)
        if not variances or n < 1:
            continue
        sd = math.sqrt(float(np.mean(variances)))
        frame.loc[chosen[0]] = (sd, expected_maximum(len(members)) * sd / math.sqrt(n))
    return frame


def summary_parameters(summary: pd.DataFrame) -> list[str]:
    """The configuration columns of a summary table: those before `n`."""
    return list(summary.columns[: summary.columns.get_loc("n")])


def _configuration(row: pd.Series, params: list[str]) -> str:
    """`augment=mixup augment.alpha=0.2`: the row's parameters as typed on the command line."""
    return " ".join(f"{k}={_as_text(row[k])}" for k in params if _as_text(row[k])) or "all runs"
