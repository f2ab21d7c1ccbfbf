"""Run directories with chosen results (result.json + metrics.csv), for testing summaries without training."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def write_run(
    run_dir: Path,
    augment: str,
    seed: int,
    acc: float,
    alpha: float = 0.2,
    ratio: float = 0.2,
    loss: float = 1.0,
    extra: dict | None = None,
    status: str = "ok",
    epochs: int = 3,
    fgsm_eps: list[float] | None = None,
    config: dict | None = None,
) -> Path:
    """A run as train.py leaves it. `extra` adds result fields (test_ece, fgsm_acc_4, ...); without it the
    result.json has only the fields that runs had before calibration and robustness were recorded. `config`
    adds config groups (e.g. {"optimizer": {"lr": 1e-5}})."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    result = {
        "status": status,
        "config": {
            "augment": {"name": augment, "alpha": alpha, "ratio": ratio},
            "trainer": {"epochs": epochs},
            "seed": seed,
            **(config or {}),
        },
    }
    if fgsm_eps is not None:  # runs from before the eval settings existed have none
        result["config"]["eval"] = {"fgsm_eps": fgsm_eps}
    if status == "ok":
        result.update({"test_acc": acc, "test_loss": loss, "train_loss": loss, "train_seconds": 1.0,
                       "wall_seconds": 1.0, "device": "cpu", **(extra or {})})
        # A learning curve that rises to the final accuracy.
        curve = [acc * (epoch / epochs) ** 0.5 for epoch in range(1, epochs + 1)]
        pd.DataFrame({"epoch": range(1, epochs + 1), "test_loss": loss, "test_acc": curve}).to_csv(
            run_dir / "metrics.csv", index=False)
    (run_dir / "result.json").write_text(json.dumps(result))
    return run_dir


def write_arms(sweep_dir: Path, arms: dict[tuple, list[float]], extra=None) -> Path:
    """One run per (configuration, seed): `arms` maps (augment, alpha, ratio) to accuracies, the i-th with seed i."""
    job = 0
    for (augment, alpha, ratio), accuracies in arms.items():
        for seed, acc in enumerate(accuracies):
            write_run(Path(sweep_dir) / str(job), augment, seed, acc, alpha, ratio,
                      extra=extra(augment, seed, acc) if extra else None)
            job += 1
    return Path(sweep_dir)
