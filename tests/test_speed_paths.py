"""The fast (device) path against the reference: same results within noise; the benchmark runs; launchers work."""

import json

import pandas as pd
import pytest
import torch
from scipy.stats import ttest_ind

from mixupexp import bench
from mixupexp.training.run import train

from .conftest import TINY, compose_config, run_cli


@pytest.mark.slow
def test_device_and_dataloader_paths_reach_the_same_accuracy(tmp_path):
    """A 3-seed synthetic mixup study through each path: the means agree within noise."""
    small = ["data=synthetic", "data.num_train=1000", "data.num_test=500", "data.image_size=16", "data.signal=15",
             "model.widths=[16,32,32,32]", "model.hidden=64", "trainer.epochs=3", "trainer.progress=off",
             "augment=mixup", "augment.ratio=0.5"]
    acc = {}
    for loader in ("device", "dataloader"):
        acc[loader] = [
            train(compose_config([*small, f"trainer.loader={loader}", f"seed={seed}"]), tmp_path / f"{loader}{seed}")["test_acc"]
            for seed in range(3)
        ]
    assert min(acc["device"] + acc["dataloader"]) > 30  # both learn (chance: 10 %)
    gap = abs(sum(acc["device"]) - sum(acc["dataloader"])) / 3
    assert ttest_ind(acc["device"], acc["dataloader"], equal_var=False).pvalue > 0.01 or gap < 2.0, acc


# A whole benchmark, every arm: in the slow set (CI runs it), out of the default suite's time.
@pytest.mark.slow
def test_benchmark_runs_and_reports_one_json_line(capsys):
    assert bench.main(["--device", "cpu", "--num-train", "64", "--batch-size", "32", "--repeats", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    arms = ("reference", "mixupexp_fp32_eager", "mixupexp")  # the study's way, each step of mixupexp's
    for arm in arms:
        assert report[f"{arm}_images_per_s"] > 0 and len(report[f"{arm}_s_per_epoch_all"]) == 1
    for key in ("speedup", "speedup_fp32_eager", "device", "versions", "warmup_epochs", "precision"):
        assert key in report
    assert report["speedup"] == pytest.approx(report["mixupexp_images_per_s"] / report["reference_images_per_s"], rel=1e-2)
    assert report["speedup_fp32_eager"] == pytest.approx(
        report["mixupexp_fp32_eager_images_per_s"] / report["reference_images_per_s"], rel=1e-2)


def test_benchmark_turns_the_order_of_the_arms_each_round():
    arms = ["a", "b", "c"]
    assert [bench.round_order(arms, r) for r in range(4)] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"],
                                                            ["a", "b", "c"]]


# A whole benchmark, every arm: in the slow set (CI runs it), out of the default suite's time.
@pytest.mark.slow
def test_benchmark_says_when_the_configured_arm_is_the_fp32_eager_one(capsys):
    args = ["--device", "cpu", "--num-train", "64", "--batch-size", "32", "--repeats", "1", "--no-profile"]
    assert bench.main([*args, "--precision", "fp32"]) == 0
    assert json.loads(capsys.readouterr().out)["configured_is_fp32_eager"] is True
    assert bench.main([*args, "--precision", "bf16"]) == 0
    assert json.loads(capsys.readouterr().out)["configured_is_fp32_eager"] is False


def test_benchmark_reference_dataset_mixes_like_the_study():
    images = torch.randint(0, 256, (200, 8, 8, 3), dtype=torch.uint8).numpy()
    ds = bench.ReferenceMixupDataset(images, torch.arange(200).numpy(), 200, [0.5] * 3, [0.25] * 3, ratio=0.3, alpha=0.2)
    labels = torch.stack([ds[i % 200][1] for i in range(3000)])
    assert torch.allclose(labels.sum(1), torch.ones(3000))
    assert (labels.max(1).values < 1).float().mean().item() == pytest.approx(0.3, abs=0.04)


def test_benchmark_rejects_bad_arguments(capsys):
    with pytest.raises(SystemExit) as info:
        bench.parse_args(["--repeats", "0"])
    assert info.value.code == 2 and "--repeats must be > 0" in capsys.readouterr().err


@pytest.mark.slow
def test_sweep_through_submitit_local_launcher(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    sweep = tmp_path / "sweep"
    run_cli(["--multirun", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", *TINY,
             "augment=mixup", "seed=0,1", f"hydra.sweep.dir={sweep}"], cwd=tmp_path)
    results = [json.loads(path.read_text()) for path in sorted(sweep.glob("*/result.json"))]
    assert [(r["status"], r["config"]["seed"]) for r in results] == [("ok", 0), ("ok", 1)]
    summary = pd.read_csv(sweep / "summary.csv")
    assert len(summary) == 1 and summary["n"].item() == 2


@pytest.mark.parametrize("launcher", ["parallel", "slurm"])
def test_shipped_launcher_presets_compose(launcher):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    from mixupexp.config.compose import compose_config

    cfg = compose_config([f"hydra/launcher={launcher}"], return_hydra_config=True)
    target = cfg.hydra.launcher._target_
    assert target.endswith("JoblibLauncher" if launcher == "parallel" else "SlurmLauncher")


# A whole benchmark, every arm: in the slow set (CI runs it), out of the default suite's time.
@pytest.mark.slow
def test_benchmark_reports_the_hardware_share(capsys):
    assert bench.main(["--device", "cpu", "--num-train", "64", "--num-test", "40", "--batch-size", "32",
                       "--repeats", "1", "--profile-steps", "2", "--eval-batch-size", "16"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip())
    assert report["flop_per_train_image"] > report["flop_per_eval_image"] > 0
    for arm in ("reference", "mixupexp_fp32_eager", "mixupexp"):
        assert report[f"{arm}_gflops"] == pytest.approx(
            report[f"{arm}_images_per_s"] * report["flop_per_train_image"] / 1e9, abs=0.1)
        assert set(report[f"{arm}_stages_ms"]) == {"data", "forward", "backward", "optimizer"}
        assert 0 < report[f"{arm}_fastest_step_ms"]
    for key in ("evaluation", "evaluation_unfolded"):  # the folded evaluation beside the model as it is
        ev = report[key]
        assert ev["images"] == 40 and ev["s"] > 0
        assert ev["gflops"] == pytest.approx(40 * report["flop_per_eval_image"] / ev["s"] / 1e9, rel=0.01, abs=0.1)
    assert "assumption" in report["cpu_peak"] and "clock_source" in report["cpu_peak"]
    assert "GFLOP/s" in captured.err and "optimizer ms" in captured.err  # the table, on stderr


def test_flop_count_is_the_flop_counters_count_of_the_model():
    from torch.utils.flop_counter import FlopCounterMode

    from mixupexp.models.networks import SimpleCNN
    from mixupexp.training.loss import soft_cross_entropy
    from mixupexp.training.profile import inference_flops, training_flops

    torch.manual_seed(0)
    model = SimpleCNN(4, (3, 8, 8), torch.zeros(3), torch.ones(3), widths=(4, 8), hidden=16)
    x, y = torch.rand(6, 3, 8, 8), torch.nn.functional.one_hot(torch.randint(4, (6,)), 4).float()
    with FlopCounterMode(display=False) as counter:
        soft_cross_entropy(model(x), y).backward()
    assert training_flops(model, x, y) == counter.get_total_flops()
    # By hand: convolutions 2*N*H*W*Cout*Cin*9 (forward), linears 2*N*in*out; the backward takes twice the
    # forward's products except the first convolution, whose input needs no gradient (weight gradient only).
    conv1, conv2 = 2 * 6 * 8 * 8 * 4 * 3 * 9, 2 * 6 * 4 * 4 * 8 * 4 * 9
    fc1, fc2 = 2 * 6 * (8 * 2 * 2) * 16, 2 * 6 * 16 * 4
    assert inference_flops(model, x) == conv1 + conv2 + fc1 + fc2
    assert training_flops(model, x, y) == 2 * conv1 + 3 * (conv2 + fc1 + fc2)
    model.zero_grad()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    training_flops(model, x, y)  # counted on a copy: statistics and gradients untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("flags, vendor, family, ghz, cores, fp32, bf16", [
    ({"avx2", "fma"}, "AuthenticAMD", 25, 2.45, 2, 156.8, None),  # Zen 3: 2 x 256-bit FMA
    ({"avx2", "fma", "avx512f", "avx512_bf16"}, "AuthenticAMD", 25, 2.6, 2, 166.4, 332.8),  # Zen 4
    ({"avx2", "fma", "avx512f", "avx512_bf16"}, "AuthenticAMD", 26, 3.0, 4, 768.0, 1536.0),  # Zen 5: 512-bit pipes
    ({"avx2", "fma", "avx512f", "amx_bf16", "avx512_bf16"}, "GenuineIntel", 6, 2.0, 8, 1024.0, 32768.0),
    ({"avx"}, "GenuineIntel", 6, 3.0, 1, 48.0, None),  # no FMA: a multiply and an add pipe
    ({"sse2"}, "", None, 1.0, 1, 8.0, None),
])
def test_cpu_peak_formula(flags, vendor, family, ghz, cores, fp32, bf16):
    from mixupexp.training.profile import cpu_peak_gflops

    peak = cpu_peak_gflops(flags, ghz, cores, vendor, family)
    assert peak["fp32"] == pytest.approx(fp32) and peak["bf16"] == (pytest.approx(bf16) if bf16 else None)
    assert f"{cores} cores" in peak["assumption"]


def test_cpu_peak_counts_the_cores_the_threads_use():
    from mixupexp.training.profile import this_cpu_peak

    peak = this_cpu_peak(threads=1)
    assert peak["cores"] == 1 and "1 cores" in peak["assumption"]


def test_cpu_peak_without_a_clock_is_unknown_not_guessed():
    from mixupexp.training.profile import cpu_peak_gflops

    peak = cpu_peak_gflops({"avx2", "fma"}, None, 2)
    assert peak["fp32"] is None and peak["bf16"] is None and peak["fp32_flop_per_cycle_per_core"] == 32
