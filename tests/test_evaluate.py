"""Kept weights (model.pt) and `python -m mixupexp.evaluate RUN_DIR [overrides]`."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mixupexp.runs.reevaluate import EvaluateError, evaluate_run
from mixupexp.training.run import train
from tests.conftest import TINY, compose_config, run_cli

EVALUATED = [*TINY, "eval.fgsm_eps=[2]"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(compose_config(EVALUATED), out)
    return out


def test_a_finished_run_keeps_its_weights_as_a_plain_state_dict(run_dir):
    state = torch.load(run_dir / "model.pt", weights_only=True)
    assert isinstance(state, dict) and state and all(torch.is_tensor(v) for v in state.values())
    assert {"mean", "std"} <= set(state)  # the training set's normalisation travels with the weights


def test_save_model_false_keeps_no_weights(tmp_path):
    train(compose_config([*TINY, "eval.fgsm_eps=[]", "trainer.save_model=false"]), tmp_path)
    assert (tmp_path / "result.json").exists() and not (tmp_path / "model.pt").exists()


def test_evaluating_again_reproduces_the_runs_own_results(run_dir):
    before = (run_dir / "result.json").read_bytes()
    path, results = evaluate_run(run_dir, [])
    assert path == run_dir / "evaluations" / "test.json"
    recorded = json.loads(before)
    for key in ("test_acc", "fgsm_acc_2"):
        assert results[key] == recorded[key]
    assert results["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)
    assert results["test_ece"] == pytest.approx(recorded["test_ece"], rel=1e-5)
    assert json.loads(path.read_text())["test_acc"] == recorded["test_acc"]
    assert (run_dir / "result.json").read_bytes() == before  # never touched


def test_other_strengths_and_other_data(run_dir):
    _, results = evaluate_run(run_dir, ["eval.fgsm_eps=[0,16]", "data.num_test=64", "data.data_seed=7"])
    assert results["num_test"] == 64
    assert results["fgsm_acc_0"] == results["test_acc"]  # eps = 0 is no attack
    assert results["fgsm_acc_16"] <= results["test_acc"]
    assert (run_dir / "evaluations" / "eval.fgsm_eps=_0,16_,data.num_test=64,data.data_seed=7.json").exists()


@pytest.mark.parametrize("overrides, message", [
    (["data.num_classes=5"], "data=synthetic has 5 classes but the model"),
    (["data=synthetic"], "does not fit 3x32x32 images of data=synthetic"),  # the group's defaults: 32x32 images
    (["model.hidden=64"], "model.hidden cannot change for an evaluation"),
    (["data.num_tset=3"], "data.num_tset=3: Key 'num_tset' not in 'DataConfig'"),
])
def test_incompatible_overrides_are_refused(run_dir, overrides, message):
    with pytest.raises(EvaluateError, match=message):
        evaluate_run(run_dir, overrides)


def test_not_a_run_and_a_run_without_weights_are_refused(run_dir, tmp_path):
    with pytest.raises(EvaluateError, match="is not a run directory"):
        evaluate_run(tmp_path, [])
    no_weights = tmp_path / "run"
    shutil.copytree(run_dir, no_weights)
    (no_weights / "model.pt").unlink()
    with pytest.raises(EvaluateError, match="has no model.pt"):
        evaluate_run(no_weights, [])


def test_cli_reads_the_hydra_config_and_answers_bad_input_in_one_line(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    # Without result.json, evaluate reads the config in .hydra/config.yaml.
    (run / ".hydra").mkdir(exist_ok=True)
    (run / ".hydra" / "config.yaml").write_text(
        __import__("omegaconf").OmegaConf.to_yaml(json.loads((run / "result.json").read_text())["config"]))
    (run / "result.json").unlink()
    proc = run_cli([str(run), "eval.fgsm_eps=[4]", "--name", "strong"], cwd=tmp_path, module="mixupexp.evaluate")
    assert proc.stdout.strip().endswith(f"-> {run / 'evaluations' / 'strong.json'}")
    assert "fgsm_acc_4" in json.loads((run / "evaluations" / "strong.json").read_text())
    bad = run_cli([str(tmp_path / "nowhere")], cwd=tmp_path, module="mixupexp.evaluate", check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'nowhere'} does not exist; give the directory of a finished run"]


def test_a_sweep_directory_is_answered_with_one_of_its_runs(run_dir, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(run_dir, sweep / "none_seed0_abc")
    with pytest.raises(EvaluateError, match=f"{sweep} is a sweep directory of 1 runs; evaluate one of them, e.g. "
                                            f"{sweep / 'none_seed0_abc'}"):
        evaluate_run(sweep, [])


class _Payload:
    def __init__(self, flag):
        self.flag = flag

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.flag}",)


@pytest.mark.parametrize("damage", ["planted pickle", "truncated", "not weights"])
def test_a_model_pt_that_is_not_plain_weights_is_one_line_and_exit_2(run_dir, tmp_path, damage, capsys):
    from mixupexp.evaluate import main

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    shutil.rmtree(run / "evaluations", ignore_errors=True)  # those of the tests above
    model = run / "model.pt"
    if damage == "planted pickle":
        torch.save({"weight": _Payload(tmp_path / "ran")}, model)
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    else:
        torch.save([1, 2, 3], model)
    with pytest.raises(SystemExit) as exit_:
        main([str(run)])
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(err) == 1 and err[0].startswith(f"error: {model} "), err
    assert not (tmp_path / "ran").exists() and not (run / "evaluations").exists()
