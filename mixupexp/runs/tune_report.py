"""The report of a tuning sweep (`hydra/sweeper=tune`): trials.csv, summary.md and two plots in its directory.

Every number is recomputed from the runs tune.json names: a trial's objective is the plain mean of its runs'
validation accuracies (`val_acc` in each result.json); the chosen configuration's mean validation accuracy on
fresh seeds is the mean over its confirmation runs; the selection bias (the best of many noisy trials is, on
average, luckier than it is good) is measured on the test images, which the search never saw (selection_bias).
The comparison with the baseline on the test set is the confirmation's own sequential summary (its directory's
summary.csv), as `python -m mixupexp.summarize DIR/confirm-trialN` writes it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from mixupexp.analysis.collect import SummaryError, is_baseline_row
from mixupexp.analysis.selection import selection_bias
from mixupexp.records.checkpoint import RESULT
from mixupexp.records.files import atomic_write_text
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.tune_design import COMPLETE, OBJECTIVE, PRUNED, RECORD_FILE, Record
from mixupexp.runs.tune_race import DROP_LEVEL

TRIALS_FILE = "trials.csv"
HISTORY_PLOT = "tune_history.png"
OBJECTIVE_PLOT = "tune_objective.png"
TEST = "test_acc"  # the test set's accuracy: read only for the fresh seeds, after the search


def is_tune_sweep(sweep_dir: Path) -> bool:
    return (Path(sweep_dir) / RECORD_FILE).is_file()


def _val_acc(run_dir: Path, key: str = OBJECTIVE) -> Optional[float]:
    """A finished run's `key` (its validation accuracy unless said), None where it has none."""
    try:
        result = read_result(run_dir / RESULT)
    except UnreadableResult:
        return None
    if result is None or result.get("status") != RunStatus.OK or not isinstance(result.get(key), (int, float)):
        return None
    return float(result[key])


def race_of(record: Record, sweep_dir: Path):
    """A raced study's race, replayed from its runs' result.json files alone (runs/tune_race.py); None for a
    study without racing."""
    from mixupexp.runs.tune_design import TuneSettings
    from mixupexp.runs.tune_race import replay

    if not record.settings.get("racing"):
        return None
    values = {t.number: {run["seed"]: a for run in t.runs
                         if (a := _val_acc(sweep_dir / run["run_dir"])) is not None} for t in record.trials}
    failed = {(t.number, run["seed"]) for t in record.trials for run in t.runs if run.get("status") in FAILURES}
    batches: dict[int, list[int]] = {}
    for trial in record.trials:
        batches.setdefault(trial.batch, []).append(trial.number)
    return replay([batches[b] for b in sorted(batches)], values, failed, TuneSettings.of(record.settings).race())


def trials_table(record: Record, sweep_dir: Path) -> pd.DataFrame:
    """One row per trial: its number, state, values, objective recomputed from its runs, and each seed's val_acc;
    raced, also its seeds and why it stopped (the race replayed from the runs)."""
    race = race_of(record, sweep_dir)
    rows = []
    for trial in record.trials:
        row = {"trial": trial.number, "state": trial.state, **trial.values}
        if race is not None:
            entry = race.entries.get(trial.number)
            row["seeds"] = " ".join(str(run["seed"]) for run in trial.runs)
            row["stop"] = (entry.stop or "racing") if entry is not None else "racing"
        accuracies = [_val_acc(sweep_dir / run["run_dir"]) for run in trial.runs]
        for run, accuracy in zip(trial.runs, accuracies):
            row[f"val_acc_seed{run['seed']}"] = accuracy
        found = [a for a in accuracies if a is not None]
        row["objective"] = sum(found) / len(found) if found and len(found) == len(trial.runs) else math.nan
        row["runs"] = " ".join(run["run_dir"] for run in trial.runs)
        rows.append(row)
    table = pd.DataFrame(rows)
    if len(table):
        table["best_so_far"] = table["objective"].cummax()
    return table


def _fresh(record: Record, sweep_dir: Path, role: str, key: str = OBJECTIVE) -> list[float]:
    runs = (record.confirm or {}).get("runs", [])
    return [a for a in (_val_acc(sweep_dir / run["run_dir"], key) for run in runs if run["role"] == role)
            if a is not None]


def _fresh_gaps(record: Record, sweep_dir: Path) -> list[float]:
    """val_acc - test_acc of each finished baseline run of the confirmation."""
    runs = [sweep_dir / run["run_dir"] for run in (record.confirm or {}).get("runs", []) if run["role"] == "baseline"]
    pairs = [(_val_acc(run), _val_acc(run, TEST)) for run in runs]
    return [val - test for val, test in pairs if val is not None and test is not None]


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def report(sweep_dir: Path, plots: bool = True) -> list[str]:
    """Write trials.csv, summary.md (and the plots, and the confirmation's summary); return the lines to print."""
    from mixupexp.runs.report import write_summary
    from mixupexp.runs.sequential_summary import verdict_lines

    sweep_dir = Path(sweep_dir)
    record = Record.read(sweep_dir)
    if record is None:
        raise SummaryError(f"{sweep_dir} holds no {RECORD_FILE}: not a tuning sweep's directory")
    table = trials_table(record, sweep_dir)
    table.to_csv(sweep_dir / TRIALS_FILE, index=False)  # recomputed from the runs at every call
    settings = record.settings
    best = record.best()
    lines: list[str] = []
    race = race_of(record, sweep_dir)
    if race is None:
        seeds = (f"{settings['seeds_per_trial']} seeds each (seeds 0-{settings['seeds_per_trial'] - 1}, the same for "
                 "every trial)")
    else:
        seeds = race_text(record, table, race)
        lines.append(race_line(record, table))
    md = [f"# Tuning sweep: {record.space_text}", "",
          f"{len(record.finished())} of {settings['n_trials']} trials done, {seeds}, sampler {settings['sampler']} "
          f"(seed {settings['sampler_seed']}). A trial's objective is the mean of its runs' validation accuracy "
          f"(`{OBJECTIVE}` of the last epoch, on the images `data.val_size` holds out of the training set); the "
          "test set played no part in the search. Every trial: "
          f"[{TRIALS_FILE}]({TRIALS_FILE}).", ""]
    if race is not None:
        md += [f"Runs, {race_line(record, table)}.", ""]
    if best is None:
        lines.append("no trial finished: nothing chosen, nothing confirmed")
        md.append(lines[-1])
        atomic_write_text(sweep_dir / "summary.md", "\n".join(md) + "\n")
        return lines
    objective = table.set_index("trial").loc[best.number, "objective"]
    chosen = ", ".join(f"{k}={v}" for k, v in best.values.items())
    fresh, fresh_base = _fresh(record, sweep_dir, "chosen"), _fresh(record, sweep_dir, "baseline")
    bias, bias_se = selection_bias(objective, _fresh(record, sweep_dir, "chosen", TEST), _fresh_gaps(record, sweep_dir))
    md += ["## The chosen configuration", "", f"Trial {best.number}: {chosen}.", "",
           "| validation accuracy | mean | seeds |", "| --- | --- | --- |",
           f"| in the search | {objective:.2f} % | {len(best.runs)} (0-{len(best.runs) - 1}) |"]
    lines.append(f"chosen: trial {best.number}, {chosen}; mean validation accuracy {objective:.2f} % in the search")
    if fresh:
        first = record.confirm["first_seed"]
        md += [f"| on fresh seeds | {_mean(fresh):.2f} % | {len(fresh)} (from seed {first}) |",
               f"| selection bias, on test images the search never saw | {_bias_text(bias, bias_se)} | |"]
        if fresh_base:
            md.append(f"| augment=none, fresh seeds | {_mean(fresh_base):.2f} % | {len(fresh_base)} |")
        lines.append(f"on {len(fresh)} fresh seeds: {_mean(fresh):.2f} % validation (selection bias, on test images "
                     f"the search never saw: {_bias_text(bias, bias_se)})")
        md += ["", SELECTION_BIAS_TEXT]
    md.append("")
    if record.confirm:
        confirm_dir = sweep_dir / record.confirm["dir"]
        try:
            confirmed = write_summary([confirm_dir], confirm_dir, plots=plots)
        except SummaryError as e:
            confirmed = None
            md.append(f"No confirmation summary: {e}")
        if confirmed is not None:
            verdicts = [f"test set, fresh seeds, against augment=none: {line}" for line in verdict_lines(confirmed)]
            lines += verdicts
            md += ["## On the test set, on fresh seeds, against the baseline", "",
                   f"The chosen configuration and augment=none (its other settings the same), run as a sequential "
                   f"sweep in [{confirm_dir.name}/]({confirm_dir.name}/summary.md): seeds were added while the "
                   "comparison was open.", "", *(f"- {line}" for line in verdict_lines(confirmed)), "",
                   _confirm_table(confirmed), ""]
    else:
        md.append("Not confirmed yet: the search has not finished.")
    md += ["## Trials", "", _trials_markdown(table, list(best.values)), ""]
    if plots:
        write_plots(table, list(best.values), sweep_dir, fresh_mean=_mean(fresh), best=best.number, race=race)
        md += [f"![optimisation history]({HISTORY_PLOT})", f"![objective over the space]({OBJECTIVE_PLOT})", ""]
    atomic_write_text(sweep_dir / "summary.md", "\n".join(md))
    return lines


SELECTION_BIAS_TEXT = (
    "Selection bias: the search's mean validation accuracy minus the chosen configuration's test accuracy on "
    "fresh seeds plus augment=none's validation − test gap on its fresh seeds (the images the search chose on "
    "hold luck of their own, which the fresh seeds' validation accuracy would keep in), ± its standard error "
    "over the fresh seeds.")


def search_runs(table: pd.DataFrame) -> int:
    return int(sum(len(str(seeds).split()) for seeds in table["seeds"])) if len(table) else 0


def race_line(record: Record, table: pd.DataFrame) -> str:
    """The runs a raced search took, against the fixed design's n_trials x seeds_per_trial for its trials."""
    runs, fixed = search_runs(table), len(table) * record.settings["seeds_per_trial"]
    saved = f"{fixed - runs} fewer ({(fixed - runs) / fixed:.0%})" if fixed and runs <= fixed else \
        f"{runs - fixed} more" if fixed else "none to compare"
    return (f"racing: {runs} runs in the search for {len(table)} trials, against {len(table)} · "
            f"{record.settings['seeds_per_trial']} = {fixed} for the fixed design (hydra.sweeper.racing=false, "
            f"seeds_per_trial = {record.settings['seeds_per_trial']}): {saved}")


def race_text(record: Record, table: pd.DataFrame, race) -> str:
    settings = record.settings
    dropped = int(table["stop"].str.startswith("dropped").sum()) if len(table) else 0
    least = settings["min_seeds_per_trial"]
    return (f"raced against the incumbent on seeds 0-{settings['max_seeds_per_trial'] - 1} (each from {least} "
            f"seed{'s' * (least != 1)}, dropped once the one-sided {DROP_LEVEL:.0%} bound of its paired difference "
            f"lay below -{settings['tune_tolerance']:g} points; {dropped} dropped; the incumbent, trial "
            f"{race.incumbent}, on {race.incumbent_seeds} seeds)")


def _bias_text(bias: float, se: float) -> str:
    return "too few fresh runs" if math.isnan(bias) else f"{bias:+.2f} ± {se:.2f} points"


def _confirm_table(summary: pd.DataFrame) -> str:
    rows = ["| configuration | seeds | test accuracy (mean ± sd) | Δ vs baseline | verdict |",
            "| --- | --- | --- | --- | --- |"]
    for index, row in summary.iterrows():
        label = "augment=none" if is_baseline_row(summary).loc[index] else "chosen"
        delta = row.get("delta_acc_vs_baseline")
        delta = "" if delta is None or pd.isna(delta) else f"{delta:+.2f}"
        stopped = row.get("stopped")
        rows.append(f"| {label} | {int(row['n'])} | {row['acc_mean']:.2f} ± {row['acc_std']:.2f} | {delta} | "
                    f"{'' if stopped is None or pd.isna(stopped) else stopped} |")
    return "\n".join(rows)


def _trials_markdown(table: pd.DataFrame, keys: list[str]) -> str:
    seeds = sorted((c for c in table if c.startswith("val_acc_seed")), key=lambda c: int(c[len("val_acc_seed"):]))
    raced = ["stop"] if "stop" in table else []
    rows = ["| trial | " + " | ".join(keys) + " | state | " + "".join(f"{c} | " for c in raced) + "objective | "
            + " | ".join(seeds) + " |", "| --- " * (3 + len(keys) + len(raced) + len(seeds)) + "|"]
    for _, row in table.iterrows():
        cells = ([str(int(row["trial"]))] + [_cell(row.get(k)) for k in keys] + [row["state"]]
                 + [row[c] for c in raced] + [_cell(row["objective"])])
        rows.append("| " + " | ".join(cells + [_cell(row.get(s)) for s in seeds]) + " |")
    return "\n".join(rows)


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def short_value(value) -> str:
    """A searched value as a tick label: 4 significant digits for a number, the value itself otherwise."""
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def write_plots(table: pd.DataFrame, keys: list[str], out_dir: Path, fresh_mean: float, best: int,
                race=None) -> None:
    """tune_history.png and tune_objective.png (tune_figures)."""
    from mixupexp.analysis.plots import _save

    history, objective = tune_figures(table, keys, fresh_mean, best, race)
    _save(history, out_dir / HISTORY_PLOT)
    _save(objective, out_dir / OBJECTIVE_PLOT)


def tune_figures(table: pd.DataFrame, keys: list[str], fresh_mean: float, best: int, race=None):
    """(history, objective): each trial's objective, the best so far and the chosen one on fresh seeds (raced:
    the incumbent over the runs spent); the objective over the searched values (a map for two numeric keys, else
    one panel per key)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    short = FuncFormatter(lambda value, _: f"{value:.3g}")  # an axis of alpha or ratio: 0.25, not 0.2500000001
    done = table[table["state"] == COMPLETE]
    history = Figure(figsize=(6.4, 4))
    ax = history.subplots()
    if race is None:
        ax.scatter(done["trial"], done["objective"], color="tab:blue", label="trial (mean over its seeds)")
        ax.step(table["trial"], table["best_so_far"], where="post", color="tab:orange", label="best so far")
        last = best
        ax.set_xlabel("trial")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # trials are whole: no tick at trial 2.5
    else:  # each trial at the runs spent when its batch settled; the incumbent's mean over its seeds then
        spent = {entry.number: race.history[entry.batch][0] for entry in race.entries.values()
                 if entry.batch < len(race.history)}
        x = table["trial"].map(spent)
        pruned = table["state"] == PRUNED
        ax.scatter(x[~pruned], table["objective"][~pruned], color="tab:blue", label="trial (mean over its seeds)")
        ax.scatter(x[pruned], table["objective"][pruned], facecolor="none", edgecolor="tab:gray",
                   label="trial dropped (mean over its seeds)")
        ax.step([0] + [h[0] for h in race.history], [math.nan] + [h[2] for h in race.history], where="post",
                color="tab:orange", label="incumbent (mean over its seeds)")
        last = race.runs()
        ax.set_xlabel("runs spent in the search")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not math.isnan(fresh_mean):
        ax.scatter([last], [fresh_mean], marker="x", s=80, color="tab:red",
                   label=f"trial {best} on fresh seeds (validation)")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize="small")
    numeric = [k for k in keys if pd.to_numeric(done[k], errors="coerce").notna().all()] if len(done) else []
    if len(numeric) == 2 and len(keys) == 2:
        figure = Figure(figsize=(6.4, 4.8))
        ax = figure.subplots()
        x, y = (pd.to_numeric(done[k]) for k in numeric)
        points = ax.scatter(x, y, c=done["objective"], cmap="viridis", s=60)
        ax.scatter(x[done["trial"] == best], y[done["trial"] == best], marker="*", s=250, facecolor="none",
                   edgecolor="red", label=f"chosen (trial {best})")
        figure.colorbar(points, ax=ax, label="mean validation accuracy (%)")
        ax.set_xlabel(numeric[0])
        ax.set_ylabel(numeric[1])
        ax.xaxis.set_major_formatter(short)
        ax.yaxis.set_major_formatter(short)
        ax.legend(fontsize="small")
    else:
        figure = Figure(figsize=(4 * len(keys), 3.6))
        axes = figure.subplots(1, len(keys), squeeze=False)
        for ax, key in zip(axes[0], keys):
            values = pd.to_numeric(done[key], errors="coerce")
            if values.notna().all():
                ax.scatter(values, done["objective"])
                ax.xaxis.set_major_formatter(short)
            else:  # categories, each written as short as it reads: 0.0702 rather than 0.07022960007711491
                ax.scatter(done[key].map(short_value), done["objective"])
            ax.set_xlabel(key)
            ax.set_ylabel("mean validation accuracy (%)")
    return history, figure
