import pytest

from mixupexp.plots import accuracy_vs
from mixupexp.summarize import main as summarize_main
from mixupexp.summarize import summary_parameters, write_summary

from .fabricate import write_arms

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ALPHA_RATIO_SWEEP = {
    ("none", 0.2, 0.2): [70.0, 70.5, 69.5],
    **{("mixup", alpha, ratio): [70.0 + alpha + ratio, 71.0 + alpha, 69.0 + ratio]
       for alpha in (0.1, 0.4, 1.0) for ratio in (0.2, 1.0)},
}


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, path


def test_sweep_over_alpha_and_ratio_gets_all_plots(tmp_path):
    write_arms(tmp_path, ALPHA_RATIO_SWEEP)
    write_summary([tmp_path], tmp_path)
    for name in ("accuracy_vs_alpha.png", "accuracy_vs_ratio.png", "learning_curves.png"):
        assert_png(tmp_path / name)


def test_one_ratio_gets_no_ratio_plot(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.0]})  # the seed study
    write_summary([tmp_path], tmp_path)
    assert_png(tmp_path / "accuracy_vs_alpha.png")
    assert_png(tmp_path / "learning_curves.png")
    assert not (tmp_path / "accuracy_vs_ratio.png").exists()


def test_only_baseline_runs_get_learning_curves_only(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0]})
    write_summary([tmp_path], tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["learning_curves.png"]


def test_runs_without_metrics_files_still_summarise(tmp_path):
    write_arms(tmp_path, {("none", 0.2, 0.2): [70.0, 71.0], ("mixup", 0.2, 0.2): [72.0, 73.0]})
    for metrics in tmp_path.rglob("metrics.csv"):
        metrics.unlink()
    write_summary([tmp_path], tmp_path)
    assert_png(tmp_path / "accuracy_vs_alpha.png")
    assert not (tmp_path / "learning_curves.png").exists()


@pytest.mark.parametrize("flags,plots", [([], True), (["--no-plots"], False)])
def test_summarize_command_writes_plots_unless_told_not_to(tmp_path, capsys, flags, plots):
    sweep, out = tmp_path / "sweep", tmp_path / "out"
    write_arms(sweep, ALPHA_RATIO_SWEEP)
    assert summarize_main([str(sweep), "--out", str(out), *flags]) == 0
    assert (out / "summary.md").exists() and "delta_acc_vs_baseline" in capsys.readouterr().out
    assert bool(list(out.glob("*.png"))) == plots


def test_alpha_plot_has_one_line_per_ratio_and_method_and_a_baseline(tmp_path):
    write_arms(tmp_path, {**ALPHA_RATIO_SWEEP, ("cutmix", 1.0, 0.5): [71.0, 72.0]})
    summary = write_summary([tmp_path], tmp_path, plots=False)
    figure = accuracy_vs(summary, summary_parameters(summary), "augment.alpha")
    _, labels = figure.axes[0].get_legend_handles_labels()
    assert labels == ["baseline (augment=none), 95 % CI shaded", "augment=cutmix ratio=0.5",
                      "augment=mixup ratio=0.2", "augment=mixup ratio=1.0"]
