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

import math
from pathlib import Path

import pandas as pd

from mixupexp.analysis.collect import (
    BASELINE,
    FGSM_PREFIX,
    SummaryError,
    _as_text,
    duplicates_line,
    fixed_settings,
    fixed_settings_text,
    is_baseline_row,
    left_out_lines,
    load_runs,
)
from mixupexp.analysis.plots import write_plots
from mixupexp.analysis.stats import MAX_SEEDS, MIN_SEEDS, PAIRED, SIGNIFICANCE, WELCH
from mixupexp.analysis.table import (
    _configuration,
    _family,
    summarize_runs,
    summary_parameters,
    sweep_value_order,
)
from mixupexp.runs.files import atomic_write_text, write_csv, write_json
from mixupexp.runs.status import RunStatus


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
        if "delta_acc_test" not in summary or row.get("augment") == BASELINE:
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
    is_baseline = is_baseline_row(summary)
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


def summary_markdown(summary: pd.DataFrame, fixed: dict | None = None, duplicates: list | None = None,
                     left_out: list | None = None) -> str:
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
    if left_out:
        intro += "\n\n" + "\n".join(f"- {line}" for line in left_out_lines(left_out))
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
        only_baseline = "augment" in summary and is_baseline_row(summary).all()
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
    more than once and its `attrs["left_out"]` the result.json files that could not be read as runs. With `require_finished`, SummaryError unless some run finished."""
    loaded = load_runs(sweep_dirs)
    duplicates = loaded.attrs.get("duplicates", [])
    left_out = loaded.attrs.get("left_out", [])
    if require_finished and not (loaded["status"] == RunStatus.OK).any():
        raise SummaryError(f"none of the {len(loaded)} runs under {', '.join(map(str, sweep_dirs))} finished")
    fixed = fixed_settings(loaded)
    runs, summary = summarize_runs(loaded, sweep_value_order(sweep_dirs))
    out_dir = Path(out_dir)
    write_csv(out_dir / "runs.csv", runs)
    write_csv(out_dir / "summary.csv", summary)
    write_json(out_dir / "summary_settings.json", {"fixed": fixed, "duplicates_left_out": duplicates,
                                                   "unreadable_left_out": left_out})
    atomic_write_text(out_dir / "summary.md", summary_markdown(summary, fixed, duplicates, left_out))
    if plots:
        write_plots(summary, runs, summary_parameters(summary), out_dir, caption=fixed_settings_text(fixed))
    summary.attrs["duplicates"] = duplicates
    summary.attrs["left_out"] = left_out
    return summary

