"""PNG plots of a summary, written next to summary.csv.

- forest.png: every configuration's difference to its baseline with its 95 % CI, a zero line, filled markers
  where the Holm-adjusted verdict is better or worse.
- accuracy.png: every configuration's mean test accuracy with its 95 % CI and each seed's accuracy as a point.
- accuracy_vs_alpha.png: accuracy against α, one panel per method whose α was swept (α shapes a different
  thing in each method), one line per value of the other settings, each seed as a point; the baseline as a band.
- accuracy_vs_ratio.png: the same against the mix ratio, when a ratio was swept.
- learning_curves.png: test accuracy per epoch, one small panel per configuration (mean ± sd over its seeds)
  with the baseline's curve in each, when the runs trained for at least 2 epochs.

A configuration has one colour in every plot (the baseline grey). Accuracy intervals are clipped to [0, 100].
Figures are drawn on matplotlib's Agg canvas (no display, no global pyplot state), so plotting works on a
headless machine and inside a Hydra callback.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from textwrap import fill

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mixupexp.analysis.collect import is_baseline_row
from mixupexp.records.files import atomic_write_bytes
from mixupexp.records.status import RunStatus

BASELINE_COLOR = "0.35"
AXIS_TITLES = {"augment.alpha": "α (λ ~ Beta(α, α))",
               "augment.ratio": "mix ratio (share of images or batches mixed)"}
FILE_NAMES = {"augment.alpha": "accuracy_vs_alpha.png", "augment.ratio": "accuracy_vs_ratio.png"}
CLIPPED = "95 % CI, clipped to [0, 100]"
LINE_STYLES = ("-", "--", ":", "-.")
LINE_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _is_set(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _label(row: pd.Series, keys: list[str]) -> str:
    """`augment=mixup alpha=0.2 ratio=0.2`: the set parameters, the group prefix dropped where it is obvious."""
    parts = [f"{k.removeprefix('augment.')}={row[k]}" for k in keys if k in row and _is_set(row[k])]
    return " ".join(parts) or "all runs"


def configuration_colors(summary: pd.DataFrame, params: list[str]) -> dict[str, object]:
    """Colour of each configuration (by its label), in the summary's row order; baselines grey."""
    keys = [p for p in params if p != "seed"]
    labels = [_label(row, keys) for _, row in summary[~is_baseline_row(summary)].iterrows()]
    palette = list(colormaps["tab10" if len(labels) <= 10 else "tab20"].colors)
    colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
    colors.update({_label(row, keys): BASELINE_COLOR for _, row in summary[is_baseline_row(summary)].iterrows()})
    return colors


def _seed_values(runs: pd.DataFrame, keys: list[str]) -> dict[str, np.ndarray]:
    """The finished runs' test accuracies by configuration label."""
    ok = runs[runs["status"] == RunStatus.OK]
    if ok.empty:
        return {}
    labels = ok.apply(lambda run: _label(run, keys), axis=1)
    return {label: rows["test_acc"].dropna().to_numpy(dtype=float) for label, rows in ok.groupby(labels, sort=False)}


def _seed_accuracies(runs: pd.DataFrame, keys: list[str]) -> dict[str, dict]:
    """The finished runs' test accuracies by configuration label, then by seed."""
    ok = runs[(runs["status"] == RunStatus.OK) & runs["test_acc"].notna()]
    if ok.empty or "seed" not in ok:
        return {}
    labels = ok.apply(lambda run: _label(run, keys), axis=1)
    return {label: dict(zip(rows["seed"], rows["test_acc"].astype(float)))
            for label, rows in ok.groupby(labels, sort=False)}


def _jitter(count: int, width: float) -> np.ndarray:
    """Evenly spread offsets in [-width, width]: seed points side by side, reproducibly."""
    return np.linspace(-width, width, count) if count > 1 else np.zeros(count)


def _ci_errors(rows: pd.DataFrame, mean: str, low: str, high: str) -> np.ndarray:
    """Error bar lengths below and above the mean; 0 where there is no interval (one run)."""
    below = (rows[mean] - rows[low]).fillna(0).clip(lower=0).to_numpy()
    above = (rows[high] - rows[mean]).fillna(0).clip(lower=0).to_numpy()
    return np.vstack([below, above])


def _legend(ax) -> None:
    # Outside the axes: inside, the legend hides error bars or curves.
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1))


def add_caption(figure: Figure, caption: str):
    """What every run shared (data, model, epochs, ...) under everything the figure holds, so that it overlaps
    neither the x-axis label nor rotated tick labels: a smoke run must not read like a study."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    bottom = figure.get_tightbbox(renderer).y0 * figure.dpi / figure.bbox.height  # in figure fractions
    return figure.text(0.01, bottom - 0.02, fill(f"All runs: {caption}", 110), fontsize="x-small", va="top",
                       color="0.3")


def _save(figure: Figure, path: Path, caption: str = "") -> Path:
    if caption:
        add_caption(figure, caption)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _significant(verdict) -> bool:
    return isinstance(verdict, str) and verdict.startswith(("better", "worse"))


UNBOUNDED_MARKERS = ("<", ">")  # the arrowheads of an interval's unbounded low and high sides


def _interval_to_edges(ax, value: float, y: float, low: float, high: float, edge: float, color) -> None:
    """An interval around `value` at height y: a finite side with a cap at its end, an unbounded one (+-inf) as a
    bar to the axis's edge (+-edge) ending in an arrowhead, never a cap, which would read as a finite end."""
    for end, side, marker in ((low, -1, UNBOUNDED_MARKERS[0]), (high, 1, UNBOUNDED_MARKERS[1])):
        if math.isfinite(end):
            ax.plot([value, end], [y, y], color=color, linewidth=1.5)
            ax.plot(end, y, marker="|", color=color, markersize=7, linestyle="none")
        elif not math.isnan(end):
            ax.plot([value, side * edge], [y, y], color=color, linewidth=1.5)
            ax.plot(side * edge, y, marker=marker, color=color, markersize=8, linestyle="none")


def forest_plot(summary: pd.DataFrame, params: list[str]) -> Figure | None:
    """Δ accuracy vs the baseline with its 95 % CI, one row per compared configuration; None without any."""
    if "delta_acc_vs_baseline" not in summary:
        return None
    rows = summary[summary["delta_acc_vs_baseline"].notna()]
    if rows.empty:
        return None
    keys = [p for p in params if p != "seed"]
    colors = configuration_colors(summary, params)
    # A sequential sweep's seeds depended on the data: its intervals are the anytime-valid ones.
    sequential = "delta_acc_av_low" in summary
    low, high = (("delta_acc_av_low", "delta_acc_av_high") if sequential
                 else ("delta_acc_ci95_low", "delta_acc_ci95_high"))
    finite = rows[[low, high, "delta_acc_vs_baseline"]].astype(float).replace([np.inf, -np.inf], np.nan)
    span = float(np.nanmax(np.abs(np.append(finite.to_numpy().ravel(), 1.0))))
    figure = Figure(figsize=(7, 1.2 + 0.45 * len(rows)))
    ax = figure.subplots()
    positions = np.arange(len(rows))[::-1]  # the first configuration on top
    for y, (_, row) in zip(positions, rows.iterrows()):
        color = colors[_label(row, keys)]
        filled = _significant(row.get("verdict"))
        frame = row.to_frame().T
        if sequential:  # the sequential interval; an unbounded side: a bar to the edge ending in an arrow
            _interval_to_edges(ax, float(row["delta_acc_vs_baseline"]), y, float(row[low]), float(row[high]),
                               1.15 * span, color)
            ax.plot(row["delta_acc_vs_baseline"], y, "o", color=color, markerfacecolor=color if filled else "white",
                    markersize=7)
            continue
        if "delta_acc_simultaneous_low" in frame:  # the interval that matches the verdicts, under the plain one
            ax.errorbar(row["delta_acc_vs_baseline"], y, xerr=_ci_errors(frame, "delta_acc_vs_baseline",
                        "delta_acc_simultaneous_low", "delta_acc_simultaneous_high"), fmt="none", capsize=0,
                        color=color, alpha=0.35, linewidth=5)
        ax.errorbar(row["delta_acc_vs_baseline"], y, xerr=_ci_errors(frame, "delta_acc_vs_baseline",
                    "delta_acc_ci95_low", "delta_acc_ci95_high"), fmt="o", capsize=3, color=color,
                    markerfacecolor=color if filled else "white", markersize=7)
    ax.axvline(0, color="black", linewidth=1)
    ax.set_yticks(positions, [_label(row, keys) for _, row in rows.iterrows()], fontsize="small")
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel("Δ test accuracy vs baseline (points)")
    if sequential:
        ax.set_title("Difference to the baseline, sequential interval (alpha / K)\nfilled: settled better/worse; "
                     "hollow: within, not settled or open; an arrow at the edge: unbounded", fontsize="medium")
        ax.set_xlim(-1.2 * span, 1.2 * span)
    else:
        ax.set_title("Difference to the baseline: 95 % CI (bars), simultaneous interval of the family (wide band)\n"
                     "filled: better/worse after Holm's correction; hollow: not significant or not testable",
                     fontsize="medium")
    ax.grid(axis="x", alpha=0.3)
    return figure


def accuracy_by_configuration(summary: pd.DataFrame, runs: pd.DataFrame, params: list[str]) -> Figure | None:
    """Mean test accuracy with its 95 % CI per configuration (baseline first), each seed's accuracy beside it."""
    rows = summary[summary["acc_mean"].notna()]
    if rows.empty:
        return None
    keys = [p for p in params if p != "seed"]
    colors = configuration_colors(summary, params)
    by_seed = _seed_accuracies(runs, keys)
    all_seeds = sorted({seed for accuracies in by_seed.values() for seed in accuracies}, key=str)
    offsets = dict(zip(all_seeds, _jitter(len(all_seeds), 0.08)))
    figure = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(rows)), 4.5))
    ax = figure.subplots()
    labels = []
    points: dict = {seed: [] for seed in all_seeds}  # the (x, accuracy) of each seed, configuration by configuration
    for x, (_, row) in enumerate(rows.iterrows()):
        label = _label(row, keys)
        labels.append(label)
        ax.errorbar(x - 0.12, row["acc_mean"], yerr=_ci_errors(row.to_frame().T, "acc_mean", "acc_ci95_low",
                    "acc_ci95_high"), fmt="o", capsize=4, markersize=7, color=colors[label])
        accuracies = by_seed.get(label, {})
        xs = [x + 0.12 + offsets[seed] for seed in accuracies]
        ax.scatter(xs, list(accuracies.values()), s=14, color=colors[label], alpha=0.7, edgecolors="none", zorder=3)
        for seed, px in zip(accuracies, xs):
            points[seed].append((px, accuracies[seed]))
    # The comparisons are paired by seed: a thin line joins each seed's runs across the configurations.
    for seed_points in points.values():
        if len(seed_points) > 1:
            ax.plot(*zip(*seed_points), color="0.6", linewidth=0.6, alpha=0.6, zorder=1)
    ax.set_xticks(range(len(labels)), labels, fontsize="small", rotation=30, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Test accuracy: mean, {CLIPPED} (left); each seed (right), joined by seed", fontsize="medium")
    ax.grid(axis="y", alpha=0.3)
    return figure


def swept_methods(summary: pd.DataFrame, x: str) -> list[str]:
    """Methods (augment values, baseline aside) that ran more than one value of `x`."""
    if x not in summary or "augment" not in summary:
        return []
    mixed = summary[~is_baseline_row(summary) & summary[x].notna()]
    counts = mixed.groupby("augment", sort=False)[x].nunique()
    return [method for method, count in counts.items() if count > 1]


def accuracy_vs(summary: pd.DataFrame, runs: pd.DataFrame, params: list[str], x: str) -> Figure | None:
    """Mean test accuracy (95 % CI, seeds as points) against parameter `x`, one panel per method that swept it;
    None when no method did."""
    methods = swept_methods(summary, x)
    if not methods:
        return None
    keys = [p for p in params if p != "seed"]
    colors = configuration_colors(summary, params)
    seeds = _seed_values(runs, keys)
    baselines = summary[is_baseline_row(summary) & summary["acc_mean"].notna()]
    figure = Figure(figsize=(6.5, 3.8 * len(methods)))
    axes = figure.subplots(len(methods), 1, squeeze=False)[:, 0]
    for ax, method in zip(axes, methods):
        for i, (_, base) in enumerate(baselines.iterrows()):
            ax.axhline(base["acc_mean"], color=BASELINE_COLOR, linestyle=LINE_STYLES[i % len(LINE_STYLES)],
                       linewidth=1, label=f"baseline: {_label(base, keys)}")
            if _is_set(base["acc_ci95_low"]):
                ax.axhspan(base["acc_ci95_low"], base["acc_ci95_high"], color=BASELINE_COLOR, alpha=0.12, linewidth=0)
        rows = summary[(summary["augment"] == method) & summary[x].notna()]
        line_keys = [p for p in keys if p not in (x, "augment")]
        lines = list(rows.groupby(line_keys, dropna=False, sort=False)) if line_keys else [((), rows)]
        values = rows[x].astype(float)
        log_x = x == "augment.alpha" and values.min() > 0 and values.max() / values.min() >= 4
        for j, (_, line) in enumerate(lines):
            line = line.sort_values(x)
            # Lines that share x values are nudged apart so that their error bars do not hide each other.
            nudge = (j - (len(lines) - 1) / 2) * 0.02
            xs = line[x].astype(float) * (1 + nudge) if log_x else line[x].astype(float) + nudge * (np.ptp(values) or 1)
            marker = LINE_MARKERS[j % len(LINE_MARKERS)]
            ax.plot(xs, line["acc_mean"], color="0.6", linestyle=LINE_STYLES[j % len(LINE_STYLES)], marker=marker,
                    markerfacecolor="0.6", label=_label(line.iloc[0], line_keys) if line_keys else method)
            for x_value, (_, row) in zip(xs, line.iterrows()):
                label = _label(row, keys)
                ax.errorbar(x_value, row["acc_mean"], yerr=_ci_errors(row.to_frame().T, "acc_mean", "acc_ci95_low",
                            "acc_ci95_high"), fmt=marker, capsize=3, color=colors[label], zorder=3)
                points = seeds.get(label, np.array([]))
                ax.scatter(np.full(len(points), x_value), points, s=10, color=colors[label], alpha=0.6,
                           edgecolors="none", zorder=2)
        if log_x:
            # α is usually swept on a multiplicative grid (0.1, 0.2, 0.4, 1.0)
            ax.set_xscale("log")
            ticks = sorted(values.unique())
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.minorticks_off()
        ax.set_xlabel(f"{AXIS_TITLES.get(x, x)} of augment={method}")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"augment={method}: mean, {CLIPPED}; dots: seeds", fontsize="medium")
        ax.grid(alpha=0.3)
        _legend(ax)
    return figure


def _epoch_curves(runs: pd.DataFrame, keys: list[str]) -> pd.DataFrame | None:
    curves = []
    for _, run in runs[runs["status"] == RunStatus.OK].iterrows():
        try:
            metrics = pd.read_csv(Path(run["run_dir"]) / "metrics.csv",
                                  usecols=lambda column: column in ("epoch", "test_acc", "val_acc"))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue  # a run without (readable) per-epoch metrics is left out of the curves only
        curves.append(metrics.assign(configuration=_label(run, keys), run=run["run_dir"]))
    return pd.concat(curves) if curves else None


def learning_curves(summary: pd.DataFrame, runs: pd.DataFrame, params: list[str]) -> Figure | None:
    """Test accuracy per epoch, mean ± sd over seeds, one panel per configuration with the baseline's curve
    in each; None without metrics.csv files or with fewer than 2 epochs (a curve needs two points)."""
    keys = [p for p in params if p != "seed"]
    curves = _epoch_curves(runs, keys)
    if curves is None or curves["epoch"].nunique() < 2:
        return None
    colors = configuration_colors(summary, params)
    order = [label for label in colors if label in set(curves["configuration"])]
    baselines = [label for label in order if colors[label] == BASELINE_COLOR]
    panels = [label for label in order if label not in baselines] or baselines
    columns = min(3, len(panels))
    grid_rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(4.2 * columns, 3.0 * grid_rows))
    axes = figure.subplots(grid_rows, columns, squeeze=False, sharey=True).ravel()

    with_validation = "val_acc" in curves and curves["val_acc"].notna().any()

    def draw(ax, label: str, linestyle: str) -> None:
        rows = curves[curves["configuration"] == label]
        by_epoch = rows.groupby("epoch")["test_acc"].agg(["mean", "std"]).fillna({"std": 0})
        ax.plot(by_epoch.index, by_epoch["mean"], color=colors[label], linestyle=linestyle,
                label=f"{label} (n={rows['run'].nunique()})")
        ax.fill_between(by_epoch.index, by_epoch["mean"] - by_epoch["std"], by_epoch["mean"] + by_epoch["std"],
                        color=colors[label], alpha=0.15, linewidth=0)
        if with_validation and linestyle == "-":  # the curve a sweep selects by, measured every epoch
            validation = rows.groupby("epoch")["val_acc"].mean()
            ax.plot(validation.index, validation, color=colors[label], linestyle=":", label="validation")

    for ax, label in zip(axes, panels):
        for base in baselines:
            if base != label:
                draw(ax, base, "--")
        draw(ax, label, "-")
        ax.set_title(label, fontsize="small")
        ax.legend(fontsize="x-small", loc="lower right")
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    for ax in axes[::columns]:
        ax.set_ylabel("test accuracy (%)")
    for ax in axes[: len(panels)]:
        ax.set_xlabel("epoch")
    figure.suptitle("Learning curves: test accuracy, mean ± sd over seeds (baseline dashed"
                    + ("; validation dotted)" if with_validation else ")"))
    figure.tight_layout()
    return figure


def write_plots(summary: pd.DataFrame, runs: pd.DataFrame, params: list[str], out_dir: Path,
                caption: str = "") -> list[Path]:
    """Write the plots that the summary supports into out_dir, each with `caption` (the settings all runs shared)
    under it; return their paths."""
    out_dir = Path(out_dir)
    figures = {
        "forest.png": forest_plot(summary, params),
        "accuracy.png": accuracy_by_configuration(summary, runs, params),
        **{FILE_NAMES[x]: accuracy_vs(summary, runs, params, x) for x in FILE_NAMES if x in params},
        "learning_curves.png": learning_curves(summary, runs, params),
    }
    return [_save(figure, out_dir / name, caption) for name, figure in figures.items() if figure is not None]
