"""The summary of a sequential sweep (`hydra/sweeper=sequential`): what was done and why each comparison stopped.

The decisions are recomputed from the runs found, with the settings of the sweep's multirun.yaml, by the same
code the sweeper used (analysis/sequential.py), so `python -m mixupexp.summarize DIR` says what the sweep said.
Per configuration: the seeds it used, why it stopped (better / worse / within ±δ / not settled at N seeds, or
still open), the interval of Δ of its design, planned or anytime-valid (at alpha / K, so that the family's
intervals hold together with probability 1 - alpha at every round), and the runs saved against the fixed design
that runs every configuration and the baseline to max_seeds.

Δ is the mean paired difference over the seeds the decision used (the baseline may have run more seeds, for
the other configurations). The fixed-n t-test's p-values, its intervals of Δ, its verdicts, its seeds advice
and P(better) with its bootstrap interval are left out: they assume
the number of seeds was fixed in advance, and stopping when the data look settled breaks that (re-run after
every seed, that test calls a difference where there is none in about a quarter of sweeps of 8 configurations).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from mixupexp.analysis import outliers
from mixupexp.analysis import sequential as seq
from mixupexp.analysis import sequential_estimate as estimate
from mixupexp.analysis.collect import BASELINE, is_baseline_row
from mixupexp.analysis.table import _configuration, _matching, summary_parameters
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.sequential_design import is_sequential, resolution
from mixupexp.runs.sequential_settings import Settings, interval_name

# Columns of the plain summary that hold only after a fixed number of seeds.
FIXED_N_COLUMNS = ("delta_acc_ci95_low", "delta_acc_ci95_high", "delta_acc_p_value", "delta_acc_p_holm",
                   "delta_acc_test", "detectable_delta", "seeds_needed", "p_improvement", "p_improvement_ci95_low",
                   "p_improvement_ci95_high", "p_improvement_kind", "delta_acc_simultaneous_low",
                   "delta_acc_simultaneous_high", "delta_acc_simultaneous_confidence")
SEQUENTIAL_COLUMNS = ("seeds", "verdict", "stopped", "settled_round", "delta_acc_av_low", "delta_acc_av_high",
                      "log_e_value", "runs_saved", "delta_acc_conditional")
ATTRS_KEY = "sequential"
OUTLIERS_KEY = "sequential_outliers"
FIXED_KEY = "sequential_same_power"
NO_SPREAD = "every seed gave the same difference: nothing to test"
IDENTICAL = "identical to the baseline at every seed"
BELOW_GRID = "the differences spread less than half a step of the accuracy grid: nothing to test"


def sweep_settings(sweep_dirs: list[Path]) -> Optional[Settings]:
    """The settings of the first sequential sweep among the directories (its multirun.yaml), or None."""
    from omegaconf import OmegaConf

    for sweep_dir in sweep_dirs:
        try:
            hydra_cfg = OmegaConf.load(Path(sweep_dir) / "multirun.yaml").hydra
        except Exception:  # no multirun.yaml, or one this version cannot read: not a sequential sweep here
            continue
        if is_sequential(hydra_cfg):
            # A sweep from before the planned design recorded no design: it ran, and is judged, with the anytime one.
            return Settings.of({"design": seq.ANYTIME, **OmegaConf.to_container(hydra_cfg.sweeper)})
    return None


def is_sequential_summary(summary: pd.DataFrame) -> bool:
    return ATTRS_KEY in summary.attrs


def _results(runs: pd.DataFrame, row: pd.Series, keys: list[str], first_seed: int = 0) -> dict[int, float]:
    """{run index: test accuracy} of a configuration's runs (index = seed - first_seed, as the rounds count
    them): NaN for a failed run (it ran; its pair drops out), unfinished runs left out, as the sweeper reads them."""
    mine = runs[_matching(runs, row, keys)]
    results = {}
    for _, run in mine.iterrows():
        index = int(run["seed"]) - first_seed
        if index < 0:
            continue
        if run["status"] == RunStatus.OK:
            results[index] = float(run["test_acc"])
        elif run["status"] in FAILURES:
            results[index] = math.nan
    return results


def sequential_summary(summary: pd.DataFrame, runs: pd.DataFrame, settings: Settings,
                       family_size: int = 0) -> pd.DataFrame:
    """The plain summary with the fixed-n judgement replaced by the sequential one (SEQUENTIAL_COLUMNS): every
    comparison of the summary in one family, as the sweep judged them (Design.decisions), of at least
    `family_size` (the configurations ever compared in the sweep's directory, runs/sequential_family.py)."""
    summary = summary.drop(columns=[c for c in FIXED_N_COLUMNS if c in summary]).copy()
    keys = summary_parameters(summary)
    results = {index: _results(runs, row, keys, settings.first_seed) for index, row in summary.iterrows()}
    columns = {c: pd.Series([math.nan] * len(summary), index=summary.index, dtype=object) for c in SEQUENTIAL_COLUMNS}
    columns["seeds"] = pd.Series({index: len(found) for index, found in results.items()})
    columns["runs_saved"] = settings.max_seeds - columns["seeds"]
    families = []
    if "compared_with" in summary:
        is_baseline = is_baseline_row(summary)
        for baseline_text, members in summary[summary["compared_with"].notna()].groupby("compared_with", sort=False):
            base = [i for i in summary[is_baseline].index if _configuration(summary.loc[i], keys) == baseline_text]
            if len(base) == 1:
                families.append((base[0], list(members.index)))
    k_total = max(sum(len(members) for _, members in families), family_size)
    far, without = [], []  # runs far from the rest of their arm, and the verdicts with them left out
    spreads = []  # the sd of each testable comparison's paired differences, for the same-power fixed design
    for base, members in families:
        family = {str(i): results[i] for i in [base, *members]}
        family_runs = pd.concat([runs[_matching(runs, summary.loc[i], keys)] for i in [base, *members]])
        alpha = settings.alpha * len(members) / k_total  # alpha / k_total for each comparison of the sweep
        judge = lambda arms: seq.decide_sweep(arms, str(base), **{**settings.decide_kwargs(), "alpha": alpha},
                                              resolution=resolution(_finished_sizes(family_runs)))
        decided = judge(family)
        simulated = None  # the design's simulation, made once a family needs it
        flagged = {key: outliers.outlying(arm) for key, arm in family.items()}
        if any(flagged.values()):
            far += [f"{_configuration(summary.loc[int(key)], keys)} seed {settings.seed(i)}: "
                    f"{family[key][i]:.2f} %" for key, seeds in flagged.items() for i in seeds]
            masked = {key: {i: math.nan if i in flagged[key] else acc for i, acc in arm.items()}
                      for key, arm in family.items()}
            without += [f"{_configuration(summary.loc[int(key)], keys)}: {decision.text} (Δ = "
                        f"{_signed(decision.mean)} points over {decision.n} pairs, anytime-valid interval "
                        f"[{_signed(decision.low)}, {_signed(decision.high)}])"
                        for key, decision in judge(masked).items()]
        for key, decision in decided.items():
            index = int(key)
            # Paired over the seeds the decision used: the arms ran different numbers of seeds.
            summary.loc[index, "delta_acc_vs_baseline"] = round(decision.mean, 4)
            if "delta_acc_n" in summary:
                summary.loc[index, "delta_acc_n"] = decision.n
            summary.loc[index, "family_size"] = k_total
            columns["verdict"][index] = decision.verdict
            differences = (seq.paired_differences(results[index], family[str(base)], settings.rounds[decision.round])
                           if decision.round >= 0 else [])
            columns["stopped"][index] = stop_text(decision, len(results[index]), _all_same(differences))
            if decision.testable and decision.n >= 2:
                spreads.append(float(np.std(differences, ddof=1)))
            if decision.settled and decision.testable:
                simulated = simulated or estimate.Simulated(estimate.Design(
                    settings.alpha / k_total, settings.smallest_effect, **settings.schedule(), e_value=settings.test()))
                columns["delta_acc_conditional"][index] = round(estimate.conditional(
                    decision.mean, float(np.std(differences, ddof=1)), decision.verdict, simulated.design,
                    simulated), 4)
            columns["settled_round"][index] = decision.settled_round
            columns["delta_acc_av_low"][index] = decision.low
            columns["delta_acc_av_high"][index] = decision.high
            columns["log_e_value"][index] = round(decision.log_e, 4)
    if "verdict" in summary:
        summary = summary.drop(columns="verdict")
    at = (summary.columns.get_loc("delta_acc_vs_baseline") + 1 if "delta_acc_vs_baseline" in summary
          else len(summary.columns))
    for offset, name in enumerate(SEQUENTIAL_COLUMNS):
        summary.insert(at + offset, name, columns[name])
    for name in ("delta_acc_av_low", "delta_acc_av_high"):
        summary[name] = pd.to_numeric(summary[name]).round(4)
    summary.attrs[ATTRS_KEY] = settings
    summary.attrs[OUTLIERS_KEY] = (far, without)
    summary.attrs[FIXED_KEY] = same_power_fixed(settings, k_total, spreads)
    return summary


def _finished_sizes(runs: pd.DataFrame) -> list:
    if "test_images" not in runs:
        return []
    return list(runs.loc[runs["status"] == RunStatus.OK, "test_images"].dropna())


def settings_record(settings: Settings) -> dict:
    """The sequential design, for summary_settings.json."""
    return {**settings.decide_kwargs(), "first_seed": settings.first_seed, "e_value": settings.test().text,
            "family": "every comparison of the sweep, each at alpha / K"}


def _all_same(differences) -> bool:
    """Whether every paired difference is the same one (up to float noise): not merely a spread below the grid."""
    d = np.asarray(differences, dtype=float)
    return len(d) >= 2 and float(np.ptp(d)) <= seq.FLOAT_TOLERANCE * max(1.0, float(np.abs(d).max()))


def stop_text(decision: seq.Decision, seeds: int, all_same: bool = True) -> str:
    """Why a comparison stopped: `better after 7 seeds`, `within ±1 points after 9 seeds`, `not settled at 20
    seeds`, or `open after 5 seeds` (the sweep stopped before it settled); for differences without spread,
    whether every seed gave the same one (`all_same`) or they only spread less than the grid's half step."""
    text = decision.text if decision.verdict == seq.NOT_SETTLED else f"{decision.text} after {seeds} seeds"
    if not decision.testable and decision.n >= 2:
        if decision.verdict == seq.WITHIN:
            text += f" ({IDENTICAL})"
        else:
            text += f" ({NO_SPREAD if all_same else BELOW_GRID})"
    return text


def _signed(value: float) -> str:
    if math.isinf(value):
        return "-∞" if value < 0 else "+∞"
    return f"{value:+.2f}"


def interval_text(row: pd.Series) -> str:
    low, high = row.get("delta_acc_av_low"), row.get("delta_acc_av_high")
    if pd.isna(low) or pd.isna(high):
        return ""
    return f"[{_signed(low)}, {_signed(high)}]"


def _compared(row: pd.Series) -> bool:
    return isinstance(row.get("stopped"), str)


def _unfinished(failed: int, interrupted: int) -> str:
    parts = [f"{n} {what}" for n, what in ((failed, "failed"), (interrupted, "interrupted")) if n]
    return f" ({', '.join(parts)})" if parts else ""


def same_power_fixed(settings: Settings, k: int, spreads: list[float]) -> Optional[tuple[int, float]]:
    """(n, power): the fixed paired t-test at alpha / K whose exact power at an effect of DESIGN_EFFECT sd of a
    paired difference equals this design's there (simulated with the sd of the differences, the median over the
    comparisons, and matched up to POWER_CAP); None without a comparison to take that sd from."""
    from mixupexp.analysis.sequential_simulation import POWER_CAP, fixed_n_for_power

    if not spreads:
        return None
    sd = float(np.median(spreads))
    simulated = estimate.Simulated(estimate.Design(settings.alpha / k, settings.smallest_effect,
                                                   **settings.schedule(), e_value=settings.test()))
    power = float((simulated.stops(seq.DESIGN_EFFECT * sd, sd)[0] == 1).mean())
    n = fixed_n_for_power(seq.DESIGN_EFFECT, min(power, POWER_CAP), settings.alpha / k)
    return (n, power) if n is not None else None


def totals(summary: pd.DataFrame, settings: Settings) -> tuple[int, int]:
    """(runs used, runs of the fixed design: every configuration and the baseline at max_seeds)."""
    return int(summary["seeds"].sum()), len(summary) * settings.max_seeds


def totals_line(summary: pd.DataFrame) -> str:
    settings = summary.attrs[ATTRS_KEY]
    used, fixed = totals(summary, settings)
    if (summary.get("verdict") == seq.OPEN).any():  # runs saved are counted when the sweep has ended
        return (f"sequential sweep, not ended (a comparison is open: the same command goes on): {used} runs so far, "
                f"at most {fixed} at max_seeds = {settings.max_seeds} seeds")
    saved = fixed - used
    line = (f"sequential sweep: {used} runs against the fixed design's {fixed} (all {len(summary)} configurations, "
            f"baseline included, at max_seeds = {settings.max_seeds} seeds): {saved} saved "
            f"({100 * saved / fixed:.0f} %)")
    same_power = summary.attrs.get(FIXED_KEY)
    if same_power:
        n, power = same_power
        runs = len(summary) * n
        line += (f"; against the same-power fixed design's {runs} ({n} seeds each, the fixed paired t-test with this "
                 f"design's power at {seq.DESIGN_EFFECT:g} sd of a paired difference, {100 * power:.0f} % simulated): "
                 f"{runs - used} saved")
    return line


def verdict_lines(summary: pd.DataFrame) -> list[str]:
    """One line per compared configuration: why it stopped, Δ, its anytime-valid interval, the runs saved; then
    the totals."""
    settings = summary.attrs[ATTRS_KEY]
    params = summary_parameters(summary)
    lines = []
    for _, row in summary.iterrows():
        if row.get("augment") == BASELINE:
            continue
        configuration = _configuration(row, params)
        if not _compared(row):
            lines.append(f"{configuration}: no baseline with the same settings")
            continue
        k = int(row["family_size"]) if not pd.isna(row.get("family_size")) else 1
        level = f"{100 * settings.alpha:g} %" + (f"/{k}" if k > 1 else "")
        delta = "" if pd.isna(row["delta_acc_vs_baseline"]) else (
            f"Δ = {row['delta_acc_vs_baseline']:+.2f} points over {_pairs(row)}{_conditional(row)}, ")
        interval = interval_text(row)
        detail = (f"{delta}{interval_name(settings.design)} interval {interval} at {level}" if interval
                  else f"{delta}no pairs")
        if not pd.isna(row["settled_round"]):
            detail += f", stopped in round {int(row['settled_round'])}"
        if interval == "[-∞, +∞]" and NO_SPREAD not in row["stopped"] and BELOW_GRID not in row["stopped"]:
            detail += "; too few pairs for any data to reach the threshold at this level"
        # An open comparison has saved nothing yet: its seeds left are the budget it may still spend.
        budget = (f"{int(row['runs_saved'])} of its {settings.max_seeds} seeds not run yet"
                  if row.get("verdict") == seq.OPEN else
                  f"{int(row['runs_saved'])} runs saved against {settings.max_seeds} seeds")
        lines.append(f"{configuration}: {row['stopped']} ({detail}; {budget})")
    lines.append(totals_line(summary))
    return lines


def interval_meaning(settings: Settings) -> str:
    """What summary.md says the interval of Δ is, for the sweep's design."""
    level = f"{100 * settings.alpha:g} % / K for a family of K configurations ({settings.test().text})"
    if settings.design == seq.PLANNED:
        return (f"Planned interval: the repeated confidence interval of Δ at {level}, valid at every round of "
                "this schedule")
    return f"Anytime-valid interval: the confidence sequence of Δ at {level}, valid however many rounds were looked at"


# False verdicts with rare collapses, by design (python -m mixupexp.analysis.guarantee_simulation --design D,
# docs/statistics.md): (K = 1, K = 8).
COLLAPSE_ERROR = {seq.PLANNED: ("7.9 %", "14.8 %"), seq.ANYTIME: ("6.2 %", "10.3 %")}


def assumption(settings: Settings) -> str:
    """What summary.md says the guarantee rests on, and the simulated case it does not cover, for the design."""
    one, eight = COLLAPSE_ERROR[settings.design]
    return (
        "The chance of a wrong verdict is at most α on a model: within a comparison, the paired differences of the "
        "seeds are independent and roughly normal with one mean and one sd (accuracies on the k/N grid of the test "
        "images were simulated and stayed within it). It does not cover rare "
        "collapses: simulated with 5 % of a configuration's runs losing 5 points at equal means (run noise sd 0.3 "
        f"points, 10 000 test images; docs/statistics.md), the {settings.design} design made a false verdict in "
        f"{one} of sweeps with K = 1 and {eight} with K = 8. A run far from the rest of its arm is the sign to look "
        "for.")


def _conditional(row: pd.Series) -> str:
    value = row.get("delta_acc_conditional")
    if value is None or pd.isna(value):
        return ""
    return (f", the mean at the stop; {value:+.2f} estimated given this verdict (conditional estimate, by "
            "simulation of this design)")


def _pairs(row: pd.Series) -> str:
    n = row.get("delta_acc_n")
    return "the pairs" if n is None or pd.isna(n) else f"{int(n)} pair{'s' * (int(n) != 1)}"


def markdown(summary: pd.DataFrame, fixed_text: str = "", duplicates: str = "") -> str:
    """summary.md of a sequential sweep."""
    settings: Settings = summary.attrs[ATTRS_KEY]
    params = summary_parameters(summary)

    def mean_ci(row) -> str:
        text = "" if pd.isna(row["acc_mean"]) else f"{row['acc_mean']:.2f}"
        if text and not pd.isna(row.get("acc_ci95_low")):
            text += f" [{row['acc_ci95_low']:.2f}, {row['acc_ci95_high']:.2f}]"
        return text

    columns = {k: (lambda row, k=k: "" if pd.isna(row[k]) else str(row[k])) for k in params}
    columns["seeds"] = lambda row: str(int(row["seeds"]))
    columns["n"] = lambda row: str(row["n"]) + _unfinished(int(row["n_failed"]), int(row["n_interrupted"]))
    columns["accuracy %"] = mean_ci
    columns["Δ accuracy vs baseline"] = lambda row: ("" if pd.isna(row.get("delta_acc_vs_baseline"))
                                                     else f"{row['delta_acc_vs_baseline']:+.2f}")
    columns[f"{interval_name(settings.design)} interval of Δ"] = interval_text
    columns["stopped"] = lambda row: row["stopped"] if _compared(row) else ""
    columns["runs saved"] = lambda row: str(int(row["runs_saved"]))

    used, fixed = totals(summary, settings)
    percent = 100 * settings.alpha
    account = (f"{used} runs so far in {len(summary)} configurations, of at most {fixed} at max_seeds = "
               f"{settings.max_seeds} seeds: not ended, a comparison is open and the same command goes on. "
               if (summary.get("verdict") == seq.OPEN).any() else
               f"{used} runs in {len(summary)} configurations, against {fixed} for the fixed design that runs every "
               f"configuration and the baseline at max_seeds = {settings.max_seeds} seeds: {fixed - used} saved "
               f"({100 * (fixed - used) / fixed:.0f} %). ")
    intro = (
        f"A sequential sweep (hydra/sweeper=sequential): {settings.text()}. {account}"
        "seeds: runs made (finished or failed); n: finished runs (and runs left unfinished, not counted). Accuracy: "
        "mean over seeds with its 95 % t interval, in %. Δ: accuracy minus the baseline's (augment=none with the "
        "same other settings), in points, paired by seed: the mean at the stop, which a stop biases (the lucky "
        "stop early), so the verdict lines give beside it the conditional estimate, given the verdict "
        f"(analysis/sequential_estimate.py). {interval_meaning(settings)}: with probability at "
        f"least {100 - percent:g} % every interval of the family holds the true Δ at every round. Runs saved: "
        "max_seeds minus the seeds used (for an open comparison: the seeds it may still take)."
    )
    lines = ["# Summary", "", intro]
    if fixed_text:
        lines += ["", f"Fixed across all runs: {fixed_text}."]
    if duplicates:
        lines += ["", f"{duplicates}."]
    lines += ["", "| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(row) for cell in columns.values()) + " |" for _, row in summary.iterrows()]
    lines += ["", "## Verdicts", "",
              f"Each comparison stopped as soon as its {interval_name(settings.design)} interval excluded 0 (better "
              "or worse) or lay "
              f"inside ±{settings.smallest_effect:g} points (within: no difference larger than that), or at max_seeds "
              f"(not settled). Every comparison of the sweep is one family of K: the chance of any wrong verdict "
              f"among them is at most {percent:g} % (Bonferroni, each comparison at {percent:g} % / K, each valid "
              "under optional stopping), on the model stated below.", ""]
    lines += [f"- {line}" for line in verdict_lines(summary)[:-1]]
    lines += ["", "## What the guarantee assumes", "", assumption(settings), ""]
    far, without = summary.attrs.get(OUTLIERS_KEY, ([], []))
    if far:
        lines += [f"Runs far from the rest of their arm ({outliers.RULE}): " + "; ".join(far) + ". The verdicts "
                  "with them left out (each counted as a failed run, its pair dropped) -- a check of how much "
                  "the answer rests on them, not a verdict of its own (the runs were left out after looking):", ""]
        lines += [f"- {line}" for line in without]
    else:
        lines += [f"No run is far from the rest of its arm ({outliers.RULE})."]
    lines += ["", "## Left out", "",
              "Fixed-n p-values, their Holm adjustment, the t intervals of Δ and the seeds needed are not shown: they "
              "are not valid after sequential stopping (the number of seeds depended on the data). NLL, ECE, FGSM and "
              "validation accuracies are in summary.csv."]
    return "\n".join(lines) + "\n"
