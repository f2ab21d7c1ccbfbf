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
from mixupexp.config.schema import ConfigError
from mixupexp.records.files import atomic_write_text, write_csv, write_json
from mixupexp.records.status import RunStatus
from mixupexp.runs import sequential_summary
from mixupexp.runs import sequential_family


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
        if isinstance(row.get("delta_acc_note"), str) and row["delta_acc_note"]:  # runs left out, or why unpaired
            detail += f" ({row['delta_acc_note']})"
    if not pd.isna(row["p_improvement"]):
        better = _with_ci(row["p_improvement"], row["p_improvement_ci95_low"], row["p_improvement_ci95_high"])
        kind = row.get("p_improvement_kind")
        detail += f"; P(better) = {better}" + (f" ({kind})" if isinstance(kind, str) and kind else "")
    return detail


def caveat_lines(fixed: dict) -> list[str]:
    """What the verdicts cannot speak for, from the settings every run shared: generated data, a run too short to
    train."""
    caveats = []
    epochs = fixed.get("trainer.epochs")
    if fixed.get("data") == "synthetic":
        caveats.append("Caveat: every run is on generated data (data=synthetic, e.g. debug=smoke); the verdicts "
                       "describe that toy problem, not mixup on a real data set.")
    if isinstance(epochs, int) and epochs <= 2:
        caveats.append(f"Caveat: {epochs} epoch{'s' * (epochs != 1)} per run: the models are far from trained, and "
                       "a method that regularises usually trails early on.")
    return caveats


def verdict_lines(summary: pd.DataFrame) -> list[str]:
    """One line per configuration compared with a baseline: its verdict on the Holm-adjusted p-value, the numbers
    behind it; then the configuration selected on the validation split, if any (printed at a sweep's end too)."""
    if sequential_summary.is_sequential_summary(summary):
        return sequential_summary.verdict_lines(summary)
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
    runs = row["delta_acc_n"] if not pd.isna(row.get("delta_acc_n")) else row["n"]
    paired = row["delta_acc_test"] == PAIRED
    now = (f"the {runs} {'seeds both arms finished' if paired else 'runs per arm'} detect "
           f"|Δ| ≥ {_number(row['detectable_delta'])} points")
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
                f"**{_configuration(row, params)}**, validation {_number(row['val_acc_mean'])} %, test "
                f"{_with_ci(row['acc_mean'], row['acc_ci95_low'], row['acc_ci95_high'])} %")
        if _compared(row):
            text += f"; {row['verdict']} ({_detail(row)})"
        lines.append(text + ".")
        lines.append("")
        lines.append(_optimism(row, len(members), params))
    return lines


def _optimism(row: pd.Series, candidates: int, params: list[str]) -> str:
    """Why the selected configuration's test accuracy is still optimistic, by how much at most, and the command
    that measures it on seeds the choice never saw."""
    bound = row.get("selection_bias_bound")
    size = (f"on average by up to +{_number(bound)} points (the expected optimism: in one sweep it can be larger): "
            f"E[max of {candidates} normals] x the candidates' validation sd "
            f"({_number(row['val_acc_sd_pooled'])} points) / sqrt(seeds)" if not pd.isna(bound) else "")
    seeds = int(row["n"]) + int(row.get("n_failed", 0)) + int(row.get("n_interrupted", 0))
    fresh = ",".join(str(seed) for seed in range(seeds, seeds + max(seeds, 3)))
    setting = " ".join(part for part in _configuration(row, params).split() if not part.startswith("augment="))
    method = row["augment"] if "augment" in row else ""
    arms = f"augment=none,{method} " if method and method != BASELINE else ""
    command = f"python -m mixupexp.train --multirun {arms}{setting} seed={fresh}".replace("  ", " ")
    return ("This test accuracy is optimistic: the configuration was chosen as the luckiest on validation, and a "
            "run's validation and test accuracy share its quality, so some of that luck carries over to the test "
            f"set{' — ' + size if size else ''}. Confirm it on seeds the choice never saw, with the settings this "
            f"sweep fixed: `{command}`.")


def _family_sentences(summary: pd.DataFrame, families: str) -> list[str]:
    """What the correction controls: one family of every comparison of the summary, or one per baseline."""
    compared = summary[summary.apply(_compared, axis=1)] if "delta_acc_test" in summary else summary.iloc[:0]
    if compared.empty:
        return []
    sizes = compared["family_size"].dropna()
    tested = int(sizes.max()) if len(sizes) else 0
    level = _percent(SIGNIFICANCE)
    if families == "summary":
        if len(compared) == 1:
            return ["The one comparison of this summary is a family of one: its p-value needs no correction."]
        every = "Both" if len(compared) == 2 else f"All {len(compared)}"
        return [f"{every} comparisons of this summary form one family: Holm's correction over the "
                f"{tested} tested keeps the chance of any false better/worse verdict anywhere in this summary at "
                f"{level}; verdicts use p (Holm), and the simultaneous intervals of Δ (each at 1 - {level} / "
                f"{tested}) hold all at once with at least {100 - 100 * SIGNIFICANCE:g} % confidence."]
    sentences = []
    for baseline, members in _families(summary):
        size = int(members["family_size"].max())
        sentences.append(f"The {len(members)} comparisons with {baseline} form one family: Holm's correction over "
                         f"the {size} tested keeps the chance of any false better/worse verdict among them at "
                         f"{level}." if len(members) > 1 else
                         f"The comparison with {baseline} is a family of one: its p-value needs no correction.")
    sentences.append(f"One family per baseline (--families baseline): the chance of a false verdict somewhere in "
                     f"this summary is higher than {level}.")
    return sentences


def summary_markdown(summary: pd.DataFrame, fixed: dict | None = None, duplicates: list | None = None,
                     families: str = "summary", test_images: int | None = None,
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
        columns["Δ, simultaneous interval"] = lambda row: _with_ci(
            row["delta_acc_vs_baseline"], row["delta_acc_simultaneous_low"], row["delta_acc_simultaneous_high"],
            sign=True) if _compared(row) else ""
        columns["Δ over"] = lambda row: (f"{row['delta_acc_n']} seeds" if row["delta_acc_test"] == PAIRED
                                         else f"{row['delta_acc_n']} runs" if _compared(row)
                                         and not pd.isna(row["delta_acc_n"]) else "")
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
    intro += " Accuracy is the last epoch's" + (f", on {test_images} test images" if test_images else "") + "."
    if has_delta:
        intro += (" Δ: accuracy minus the baseline's (augment=none with the same other settings), in points: the "
                  "mean per-seed difference over the seeds both arms finished (paired t-test; 'Δ over' counts them, "
                  "so Δ can differ from the difference of the means beside it, which use every finished run), or, "
                  "with fewer than 2 such seeds, the difference of the means (Welch t-test); 95 % interval. "
                  "p: two-sided; p (Holm): adjusted over the family below; the simultaneous interval matches "
                  "the verdicts. P(better): paired, the share of seeds won (ties count half); unpaired, the "
                  "probability that a run beats a run of the baseline (0.5 = no effect); with an exact "
                  "(Clopper-Pearson) 95 % interval that holds at few seeds. These p-values are for a fixed number "
                  "of seeds: re-summarising a sweep each time seeds are added and stopping when p is small "
                  "invalidates them (repeated looks); hydra/sweeper=sequential adds seeds with tests that stay "
                  "valid however often they are looked at.")
    if fixed:
        intro += f"\n\nFixed across all runs: {fixed_settings_text(fixed)}."
        intro += "".join(f"\n\n{line}" for line in caveat_lines(fixed))
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
    lines += _family_sentences(summary, families)
    if has_delta:
        lines += [""] + [f"- {line}" for line in verdict_lines(summary) if not line.startswith("selected ")]
    families = _families(summary)
    if families:
        lines += ["", "## Seeds needed", "",
                  f"From the observed spread (of the per-seed differences where runs are paired by seed, else of "
                  f"the runs), for 80 % power at {_percent(SIGNIFICANCE)} / m, m the comparisons tested in the "
                  f"family (Holm's strictest step); never fewer than {MIN_SEEDS}.", ""]
        lines += [_seeds_sentence(row, params) for _, members in families for _, row in members.iterrows()]
    selection = selection_lines(summary)
    if selection:
        lines += ["", "## Selection", ""] + selection
    return "\n".join(lines) + "\n"


def write_summary(sweep_dirs: list[Path], out_dir: Path, plots: bool = True,
                  require_finished: bool = False, families: str = "summary") -> pd.DataFrame:
    """Write runs.csv, summary.csv, summary_settings.json (what all runs shared), summary.md and (with `plots`) the
    PNG plots into out_dir; return the summary, its `attrs["duplicates"]` naming runs counted once although found
    more than once and its `attrs["left_out"]` the result.json files that could not be read as runs. With
    `require_finished`, SummaryError unless some run finished."""
    loaded = load_runs(sweep_dirs)
    duplicates = loaded.attrs.get("duplicates", [])
    left_out = loaded.attrs.get("left_out", [])
    if require_finished and not (loaded["status"] == RunStatus.OK).any():
        raise SummaryError(f"none of the {len(loaded)} runs under {', '.join(map(str, sweep_dirs))} finished")
    fixed = fixed_settings(loaded)
    runs, summary = summarize_runs(loaded, sweep_value_order(sweep_dirs), families)
    sizes = loaded["test_images"].dropna().unique() if "test_images" in loaded else []
    test_images = int(sizes[0]) if len(sizes) == 1 else None
    sequential = sequential_summary.sweep_settings(sweep_dirs)
    if sequential is not None:  # the seeds depended on the data: judged as the sweep judged them
        try:
            family_size = sequential_family.recorded_size(sweep_dirs)
        except ConfigError as e:
            raise SummaryError(str(e)) from None
        summary = sequential_summary.sequential_summary(summary, runs, sequential, family_size)
    out_dir = Path(out_dir)
    write_csv(out_dir / "runs.csv", runs)
    write_csv(out_dir / "summary.csv", summary)
    settings = {"fixed": fixed, "duplicates_left_out": duplicates, "unreadable_left_out": left_out}
    if sequential is not None:
        settings["sequential"] = sequential_summary.settings_record(sequential)
    write_json(out_dir / "summary_settings.json", settings)
    markdown = (summary_markdown(summary, fixed, duplicates, families, test_images, left_out) if sequential is None
                else sequential_summary.markdown(summary, fixed_settings_text(fixed) if fixed else "",
                                                 duplicates_line(duplicates) if duplicates else ""))
    if sequential is not None and left_out:  # its own report has no place for them: at its end, then
        markdown += "\n" + "\n".join(f"- {line}" for line in left_out_lines(left_out)) + "\n"
    atomic_write_text(out_dir / "summary.md", markdown)
    if plots:
        write_plots(summary, runs, summary_parameters(summary), out_dir, caption=fixed_settings_text(fixed))
    summary.attrs["duplicates"] = duplicates
    summary.attrs["fixed"] = fixed
    summary.attrs["left_out"] = left_out
    return summary

