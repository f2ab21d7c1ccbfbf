import numpy as np
import pytest
from matplotlib.colors import to_rgba

from mixupexp.analysis.collect import load_runs
from mixupexp.analysis.plots import (
    BASELINE_COLOR,
    accuracy_by_configuration,
    accuracy_vs,
    configuration_colors,
    forest_plot,
    learning_curves,
)
from mixupexp.analysis.table import summarize_runs, summary_parameters
from mixupexp.runs.report import write_summary
from mixupexp.summarize import main as summarize_main

from .fabricate import write_arms, write_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALPHA_RATIO_SWEEP = {
    ("none", 0.2, 0.2): [70.0, 70.5, 69.5],
    **{("mixup", alpha, ratio): [70.0 + alpha + ratio, 71.0 + alpha, 69.0 + ratio]
       for alpha in (0.1, 0.4, 1.0) for ratio in (0.2, 1.0)},
}
METHODS = {
    ("none", 0.2, 0.2): [70.0, 70.5, 69.5],
    ("mixup", 0.2, 0.2): [71.0, 70.2, 70.9],
    ("mixup_batch", 1.0, 1.0): [72.0, 71.5, 71.9],
    ("cutmix", 1.0, 0.5): [71.0, 72.0, 70.4],
}


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path


def summarized(tmp_path, arms):
    write_arms(tmp_path, arms)
    runs, summary = summarize_runs(load_runs([tmp_path]))
    return runs, summary, summary_parameters(summary)


def test_sweep_over_alpha_and_ratio_gets_all_plots(tmp_path):
    write_arms(tmp_path, ALPHA_RATIO_SWEEP)
    write_summary([tmp_path], tmp_path)
    for name in ("forest.png", "accuracy.png", "accuracy_vs_alpha.png", "accuracy_vs_ratio.png", "learning_curves.png"):
        assert_png(tmp_path / name)


def test_one_alpha_gets_no_alpha_plot(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.5]})  # the seed study
    write_summary([tmp_path], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["accuracy.png", "forest.png", "learning_curves.png"]


def test_a_methods_comparison_has_no_alpha_axis(tmp_path):
    # Each method ran one α, and α shapes a different thing in each: an α axis would compare nothing.
    runs, summary, params = summarized(tmp_path, METHODS)
    assert accuracy_vs(summary, runs, params, "augment.alpha") is None
    figure = accuracy_by_configuration(summary, runs, params)
    labels = [t.get_text() for t in figure.axes[0].get_xticklabels()]
    assert labels[0] == "augment=none" and len(labels) == 4


def test_alpha_plot_has_one_panel_per_method_that_swept_alpha(tmp_path):
    runs, summary, params = summarized(tmp_path, {**ALPHA_RATIO_SWEEP, ("cutmix", 0.5, 0.5): [71.0, 72.0, 70.0],
                                                   ("cutmix", 2.0, 0.5): [71.5, 72.5, 70.5],
                                                   ("mixup_batch", 1.0, 0.5): [71.0, 72.0, 70.0]})
    figure = accuracy_vs(summary, runs, params, "augment.alpha")
    titles = [ax.get_title() for ax in figure.axes]
    assert sorted(title.split(":")[0] for title in titles) == ["augment=cutmix", "augment=mixup"]
    _, labels = next(ax for ax in figure.axes if ax.get_title().startswith("augment=mixup")).get_legend_handles_labels()
    assert labels == ["baseline: augment=none", "ratio=0.2", "ratio=1.0"]


def test_every_seed_is_a_point_beside_its_mean(tmp_path):
    runs, summary, params = summarized(tmp_path, METHODS)
    figure = accuracy_by_configuration(summary, runs, params)
    seeds = np.concatenate([collection.get_offsets()[:, 1] for collection in figure.axes[0].collections
                            if len(collection.get_offsets()) == 3])
    assert sorted(seeds) == sorted(v for values in METHODS.values() for v in values)


def test_forest_plot_marks_the_adjusted_verdict_and_zero(tmp_path):
    runs, summary, params = summarized(tmp_path, {
        ("none", 0.2, 0.2): [70.0, 70.4, 69.8, 70.1, 70.3],
        ("mixup", 0.2, 0.2): [75.0, 75.3, 74.9, 75.4, 75.0],  # clearly better, after any correction
        ("mixup", 0.4, 0.2): [70.3, 69.8, 70.0, 70.6, 69.9],
    })
    figure = forest_plot(summary, params)
    ax = figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["augment=mixup alpha=0.2 ratio=0.2",  # on top
                                                          "augment=mixup alpha=0.4 ratio=0.2"]
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    faces = {round(line.get_xdata()[0]): line.get_markerfacecolor() for line in markers}
    assert faces[5] != "white" and faces[0] == "white"  # filled = better/worse after Holm
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.lines)  # the zero line


def test_a_configuration_has_one_colour_in_every_plot(tmp_path):
    runs, summary, params = summarized(tmp_path, ALPHA_RATIO_SWEEP)
    colors = configuration_colors(summary, params)
    assert colors["augment=none"] == BASELINE_COLOR
    assert len({str(c) for label, c in colors.items() if label != "augment=none"}) == len(colors) - 1
    label = "augment=mixup alpha=0.4 ratio=1.0"
    forest = forest_plot(summary, params).axes[0]
    forest_colors = {t.get_text(): line.get_color() for t, line in
                     zip(forest.get_yticklabels(), [l for l in forest.lines if l.get_marker() == "o"])}
    assert to_rgba(forest_colors[label]) == to_rgba(colors[label])
    curves = learning_curves(summary, runs, params)
    panel = next(ax for ax in curves.axes if ax.get_title() == label)
    assert to_rgba(panel.lines[-1].get_color()) == to_rgba(colors[label])


def test_learning_curves_need_two_epochs(tmp_path):
    for seed in range(2):
        write_run(tmp_path / f"{seed}", "none", seed, 70.0 + seed, epochs=1)
        write_run(tmp_path / f"m{seed}", "mixup", seed, 71.0 + seed, epochs=1)
    write_summary([tmp_path], tmp_path)
    assert not (tmp_path / "learning_curves.png").exists()


def test_only_baseline_runs_get_an_accuracy_plot_and_curves_only(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0]})
    write_summary([tmp_path], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["accuracy.png", "learning_curves.png"]


def test_runs_without_metrics_files_still_summarise(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.5]})
    for metrics in tmp_path.rglob("metrics.csv"):
        metrics.unlink()
    write_summary([tmp_path], tmp_path)
    assert_png(tmp_path / "forest.png")
    assert not (tmp_path / "learning_curves.png").exists()


@pytest.mark.parametrize("flags,plots", [([], True), (["--no-plots"], False)])
def test_summarize_command_writes_plots_unless_told_not_to(tmp_path, capsys, flags, plots):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    write_arms(sweep, ALPHA_RATIO_SWEEP)
    assert summarize_main([str(sweep), "--out", str(out), *flags]) == 0
    assert (out / "summary.md").exists() and "delta_acc_vs_baseline" in capsys.readouterr().out
    assert bool(list(out.glob("*.png"))) == plots


def _overlaps(figure, text) -> list[str]:
    """The other texts of `figure` (labels, tick labels, titles) whose rendered boxes overlap `text`'s."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    renderer = FigureCanvasAgg(figure).get_renderer()
    box = text.get_window_extent(renderer)
    others = [t for t in figure.findobj(Text) if t is not text and t.get_text().strip() and t.get_visible()]
    return [t.get_text() for t in others if t.get_window_extent(renderer).overlaps(box)]


def test_the_caption_overlaps_no_label_or_tick(tmp_path):
    from mixupexp.analysis.plots import add_caption

    runs, summary = summarize_runs(load_runs([write_arms(tmp_path, METHODS)]))
    params = summary_parameters(summary)
    caption = "data=synthetic (data.num_train=2000, ...); model=simple_cnn; trainer.epochs=1 " * 3
    for figure in (forest_plot(summary, params), accuracy_by_configuration(summary, runs, params)):
        assert figure is not None
        assert _overlaps(figure, add_caption(figure, caption)) == []


def test_each_seed_is_joined_across_configurations_as_the_test_pairs_them(tmp_path):
    runs, summary = summarize_runs(load_runs([write_arms(tmp_path, METHODS)]))
    ax = accuracy_by_configuration(summary, runs, summary_parameters(summary)).axes[0]
    joins = [line for line in ax.get_lines() if len(line.get_xdata()) == len(METHODS)]
    assert len(joins) == 3  # one line per seed through its 4 runs
    assert sorted(round(float(y), 1) for y in joins[0].get_ydata()) == sorted(
        round(accs[0], 1) for accs in METHODS.values())


def test_validation_curves_are_drawn_where_runs_measured_them(tmp_path):
    import pandas as pd

    for seed in range(2):
        for augment in ("none", "mixup"):
            run = write_run(tmp_path / f"{augment}{seed}", augment, seed, 70.0, extra={"val_acc": 68.0})
            pd.DataFrame({"epoch": [1, 2, 3], "test_acc": [50.0, 60, 70], "val_acc": [49.0, 58, 68]}).to_csv(
                run / "metrics.csv", index=False)
    runs, summary = summarize_runs(load_runs([tmp_path]))
    figure = learning_curves(summary, runs, summary_parameters(summary))
    dotted = [line for ax in figure.axes for line in ax.get_lines() if line.get_linestyle() == ":"]
    assert dotted and list(dotted[0].get_ydata()) == [49.0, 58.0, 68.0]


def test_an_unbounded_interval_ends_in_an_arrow_at_the_edge_not_a_cap():
    """A sequential summary's interval open on one side (an anytime-valid interval after 1 pair) was drawn as a
    capped bar at the axis's edge, which reads as a finite end."""
    import pandas as pd

    from mixupexp.analysis.plots import UNBOUNDED_MARKERS

    summary = pd.DataFrame([
        {"augment.name": "none", "delta_acc_vs_baseline": np.nan, "delta_acc_av_low": np.nan,
         "delta_acc_av_high": np.nan, "verdict": ""},
        {"augment.name": "mixup", "delta_acc_vs_baseline": 1.5, "delta_acc_av_low": -0.5,
         "delta_acc_av_high": np.inf, "verdict": "open"},
        {"augment.name": "cutmix", "delta_acc_vs_baseline": -2.0, "delta_acc_av_low": -np.inf,
         "delta_acc_av_high": np.inf, "verdict": "open"},
    ])
    ax = forest_plot(summary, ["augment.name"]).axes[0]
    arrows = sorted((line.get_marker(), float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines
                    if line.get_marker() in UNBOUNDED_MARKERS)
    edge = 1.15 * 2.0  # the largest finite value sets the span
    assert arrows == [("<", -edge, 0.0), (">", edge, 0.0), (">", edge, 1.0)]  # mixup on top (y = 1)
    caps = [x for line in ax.lines if line.get_marker() == "|" for x in line.get_xdata()]
    assert caps == [pytest.approx(-0.5)]  # the one finite end has its cap; no cap at either edge
    assert ax.get_xlim()[1] >= edge
