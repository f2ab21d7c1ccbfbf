"""hydra/launcher=ray (the optional extra `pip install -e ".[ray]"`) against a local Ray runtime: a small sweep
lands every run, the summary counts each once, the exit status accounts for a failing job. Skipped where Hydra's
Ray launcher is not installed."""

import json
import os

import pandas as pd
import pytest

from .conftest import REPO, TINY, run_cli
from .sweep_callbacks import FAIL_ENV, FAIL_TARGET, FAILURE

QUICK = [*TINY, "eval.fgsm_eps=[]", "trainer.threads=1"]


@pytest.mark.slow
def test_a_sweep_through_a_local_ray_runtime_lands_every_run_and_accounts_for_a_failing_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_ray_launcher")
    sweep = tmp_path / "sweep"
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), FAIL_ENV: "2",
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    proc = run_cli(["--multirun", "hydra/launcher=ray", f"+hydra.launcher.ray.init.num_cpus={os.cpu_count()}",
                    *QUICK, "seed=0,1,2", f"hydra.sweep.dir={sweep}", f"+hydra.callbacks.fail._target_={FAIL_TARGET}"],
                   cwd=tmp_path, check=False, env=env)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: 1 of 3 distinct runs (3 jobs) in {sweep} did not finish: failed: RuntimeError: "
                           f"{FAILURE} (none_seed2_"), last
    found = [json.loads(p.read_text()) for p in sweep.glob("*/result.json")]
    assert sorted((r["config"]["seed"], r["status"]) for r in found) == [(0, "ok"), (1, "ok"), (2, "failed")]
    summary = pd.read_csv(sweep / "summary.csv")
    assert summary["n"].item() == 2 and summary["n_failed"].item() == 1
