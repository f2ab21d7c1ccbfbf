"""PNG plots of a summary, written next to summary.csv.

- accuracy_vs_alpha.png: test accuracy against mixup's α, one line per ratio (and per other swept setting),
  95 % CI error bars, the baseline (augment=none) as a horizontal band (its 95 % CI).
- accuracy_vs_ratio.png: the same against the mix ratio, when more than one ratio was run.
- learning_curves.png: test accuracy per epoch, mean ± sd over the seeds of each configuration.

Figures are drawn on matplotlib's Agg canvas (no display, no global pyplot state), so plotting works on a
headless machine and inside a Hydra callback.
"""

from __future__ import annotations

import io
import math
from textwrap import fill
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mixupexp.files import atomic_write_bytes

BASELINE_COLOR = "0.35"
AXIS_TITLES = {"augment.alpha": "mixup α (λ ~ Beta(α, α))", "augment.ratio": "mix ratio (share of images mixed)"}
FILE_NAMES = {"augment.alpha": "accuracy_vs_alpha.png", "augment.ratio": "accuracy_vs_ratio.png"}
MIXUP_KEYS = ("augment", "augment.alpha", "augment.ratio")


def _is_set(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _label(row: pd.Series, keys: list[str]) -> str:
    """`augment=mixup alpha=0.2 ratio=0.2`: the set parameters, the group prefix dropped where it is obvious."""
    parts = [f"{k.removeprefix('augment.')}={row[k]}" for k in keys if _is_set(row[k])]
    return " ".join(parts) or "all runs"


def _legend(ax) -> None:
    # Outside the axes: inside, the legend hides error bars or curves.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))


def _colors(count: int) -> list:
    """Distinct colours: tab10 repeats after 10 lines, tab20 holds twice as many."""
    return list(colormaps["tab10" if count <= 10 else "tab20"].colors)


def _save(figure: Figure, path: Path, caption: str = "") -> Path:
    if caption:  # what every run shared (data, model, epochs, ...): a smoke run must not read like a study
        figure.text(0.01, -0.01, fill(f"All runs: {caption}", 110), fontsize="x-small", va="top", color="0.3")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _ci_halfwidths(rows: pd.DataFrame) -> np.ndarray:
    """Error bar lengths below and above the mean; 0 where there is no interval (one run)."""
    below = (rows["acc_mean"] - rows["acc_ci95_low"]).fillna(0).to_numpy()
    above = (rows["acc_ci95_high"] - rows["acc_mean"]).fillna(0).to_numpy()
    return np.vstack([below, above])


def accuracy_vs(summary: pd.DataFrame, params: list[str], x: str) -> Figure | None:
    """Mean test accuracy (95 % CI) of the mixup configurations against parameter `x`; None if nothing to draw."""
    is_baseline = summary["augment"] == "none"
    mixed = summary[~is_baseline & summary[x].notna()]
    if mixed.empty:
        return None
    # One line per value of the other parameters; the augmentation names a line only when several were run.
    several_methods = mixed["augment"].nunique() > 1
    line_keys = [p for p in params if p != x and (p != "augment" or several_methods)]
    other_keys = [p for p in params if p not in MIXUP_KEYS]
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    for _, base in summary[is_baseline].iterrows():
        label = " ".join(["baseline (augment=none)", _label(base, other_keys) if other_keys else ""]).strip()
        label += ", 95 % CI shaded" if _is_set(base["acc_ci95_low"]) else ""
        ax.axhline(base["acc_mean"], color=BASELINE_COLOR, linestyle="--", linewidth=1, label=label)
        if _is_set(base["acc_ci95_low"]):
            ax.axhspan(base["acc_ci95_low"], base["acc_ci95_high"], color=BASELINE_COLOR, alpha=0.15, linewidth=0)
    lines = list(mixed.groupby(line_keys, dropna=False, sort=True)) if line_keys else [((), mixed)]
    values = mixed[x].astype(float)
    log_x = x == "augment.alpha" and values.min() > 0 and values.max() / values.min() >= 4
    colors = _colors(len(lines))
    for i, (_, line) in enumerate(lines):
        line = line.sort_values(x)
        # Lines that share x values are nudged apart (by 1.5 % of x on a log axis, of the x range otherwise)
        # so that their error bars do not hide each other.
        nudge = (i - (len(lines) - 1) / 2) * 0.015
        xs = line[x].astype(float) * (1 + nudge) if log_x else line[x].astype(float) + nudge * (np.ptp(values) or 1)
        ax.errorbar(xs, line["acc_mean"], yerr=_ci_halfwidths(line), marker="o", capsize=3,
                    color=colors[i % len(colors)], label=_label(line.iloc[0], line_keys) if line_keys else "mixup")
    if log_x:
        # α is usually swept on a multiplicative grid (0.1, 0.2, 0.4, 1.0)
        ax.set_xscale("log")
        ax.set_xticks(sorted(values.unique()), [f"{v:g}" for v in sorted(values.unique())])
        ax.minorticks_off()
    ax.set_xlabel(AXIS_TITLES.get(x, x))
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy: mean over seeds, 95 % confidence interval")
    ax.grid(alpha=0.3)
    _legend(ax)
    return figure


def learning_curves(runs: pd.DataFrame, params: list[str]) -> Figure | None:
    """Test accuracy per epoch, mean ± sd over the seeds of each configuration; None without metrics.csv files."""
    curves = []
    for _, run in runs[runs["status"] == "ok"].iterrows():
        path = Path(run["run_dir"]) / "metrics.csv"
        try:
            metrics = pd.read_csv(path, usecols=["epoch", "test_acc"])
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue  # a run without (readable) per-epoch metrics is left out of the curves only
        curves.append(metrics.assign(configuration=_label(run, params), run=run["run_dir"], augment=run.get("augment")))
    if not curves:
        return None
    figure = Figure(figsize=(7, 4.5))
    ax = figure.subplots()
    # The runs table lists the baseline first, then the configurations in order; keep that order.
    configurations = list(pd.concat(curves).groupby("configuration", sort=False))
    colors = _colors(len(configurations))
    for i, (configuration, rows) in enumerate(configurations):
        by_epoch = rows.groupby("epoch")["test_acc"].agg(["mean", "std"])
        baseline = rows["augment"].iloc[0] == "none" if "augment" in rows else False
        color = BASELINE_COLOR if baseline else colors[i % len(colors)]
        ax.plot(by_epoch.index, by_epoch["mean"], marker="." if len(by_epoch) < 40 else None, color=color,
                linestyle="--" if baseline else "-", label=f"{configuration} (n={rows['run'].nunique()})")
        ax.fill_between(by_epoch.index, by_epoch["mean"] - by_epoch["std"], by_epoch["mean"] + by_epoch["std"],
                        color=color, alpha=0.15, linewidth=0)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Learning curves: mean ± sd over seeds")
    ax.grid(alpha=0.3)
    _legend(ax)
    return figure


def write_plots(summary: pd.DataFrame, runs: pd.DataFrame, params: list[str], out_dir: Path,
                caption: str = "") -> list[Path]:
    """Write the plots that the summary supports into out_dir, each with `caption` (the settings all runs shared)
    under it; return their paths."""
    out_dir = Path(out_dir)
    written = []
    for x in ("augment.alpha", "augment.ratio"):
        if x not in params or "augment" not in summary:
            continue
        swept = summary.loc[summary["augment"] != "none", x].nunique() > 1
        if x == "augment.ratio" and not swept:
            continue  # one ratio: the α plot already shows it
        figure = accuracy_vs(summary, params, x)
        if figure is not None:
            written.append(_save(figure, out_dir / FILE_NAMES[x], caption))
    figure = learning_curves(runs, params)
    if figure is not None:
        written.append(_save(figure, out_dir / "learning_curves.png", caption))
    return written
