"""`python -m mixupexp.evaluate RUN_DIR [overrides]`: evaluate a finished run's kept weights again, without training.

The model is rebuilt from the run's own config (result.json's `config`, else .hydra/config.yaml) and loaded
from its model.pt. Overrides may change what it is evaluated on and how: `eval.fgsm_eps=[...]`, another data set
(`data=svhn`, `data=image_folder data.root=DIR`) or data setting (`data.num_test=...`), `trainer.device`,
`trainer.eval_batch_size`. Evaluation is in fp32, as after training. The results go to RUN_DIR/evaluations/<name>.json; result.json
is never touched.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from pathlib import Path

import torch
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mixupexp.config.schema import Config
from mixupexp.data.datasets import load_data
from mixupexp.models.networks import build_model
from mixupexp.records.checkpoint import MODEL, RESULT, CheckpointError, load_plain
from mixupexp.records.files import write_json
from mixupexp.training.device import pick_device, versions
from mixupexp.training.metrics import evaluate, fgsm_accuracy, fgsm_key
from mixupexp.training.validate import validate

log = logging.getLogger("mixupexp")

# What an evaluation may change: the data it runs on and how it is measured, never the trained model.
CHANGEABLE = ("data", "eval", "trainer.device", "trainer.eval_batch_size")


class EvaluateError(ValueError):
    """Bad input to the evaluate command; the message says what is wrong and how to fix it."""


def saved_config(run_dir: Path) -> dict:
    """The run's config: the resolved copy in result.json, which the run wrote with its result, else
    .hydra/config.yaml. result.json comes first: .hydra/ says what the last command in the directory was given,
    result.json what the run was trained with."""
    from mixupexp.records.result import UnreadableResult, read_result

    hydra_config = run_dir / ".hydra" / "config.yaml"
    try:
        result = read_result(run_dir / RESULT)
    except UnreadableResult as e:
        if not hydra_config.is_file():
            raise EvaluateError(f"{e.path} {e.problem}: it holds the run's config, which evaluate needs") from e
        result = None
    if result is not None:
        return result["config"]
    if hydra_config.is_file():
        return OmegaConf.to_container(OmegaConf.load(hydra_config), resolve=True)
    runs = sorted(path.parent for path in run_dir.glob(f"*/{RESULT}"))
    if runs:  # a sweep's directory: its runs are one level down
        raise EvaluateError(f"{run_dir} is a sweep directory of {len(runs)} runs; evaluate one of them, e.g. "
                            f"{runs[0]}")
    raise EvaluateError(f"{run_dir} is not a run directory (no .hydra/config.yaml or result.json); give the "
                        "directory of a finished run, e.g. outputs/runs/<run name> or <sweep dir>/<run name>")


def _group_option(group: str, option: str) -> dict:
    """The defaults of one option of a config group (e.g. data=svhn), as `python -m mixupexp.train` composes it."""
    from hydra.errors import HydraException

    from mixupexp.config.compose import compose_config

    try:
        return OmegaConf.to_container(compose_config([f"{group}={option}"])[group])
    except HydraException as e:
        from mixupexp.runs.command_plan import one_line

        raise EvaluateError(one_line(e, [f"{group}={option}"])) from e


def apply_overrides(config: dict, overrides: list[str]):
    """The run's config with `overrides` applied and checked against the schema; EvaluateError for a key that
    would change the trained model or that does not exist."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as e:
        raise EvaluateError(str(e).splitlines()[0]) from e
    config = {k: v for k, v in config.items() if k != "hydra"}
    for override in parsed:
        key = override.get_key_element().lstrip("+~")
        if not any(key == allowed or key.startswith(allowed + ".") for allowed in CHANGEABLE):
            raise EvaluateError(f"{key} cannot change for an evaluation (it would be another model); "
                                f"evaluate takes overrides of {', '.join(CHANGEABLE)}")
        if override.is_sweep_override():
            raise EvaluateError(f"{override.input_line}: evaluate takes one value per key")
    cfg = OmegaConf.merge(OmegaConf.structured(Config), config)
    for override in parsed:
        key, value = override.get_key_element().lstrip("+~"), override.value()
        try:
            if key == "data":  # a group: its option's defaults replace the run's data settings
                cfg.data = OmegaConf.merge(OmegaConf.structured(Config).data, _group_option("data", value))
            else:
                OmegaConf.update(cfg, key, value, merge=False)
        except (OmegaConfBaseException, ValueError) as e:
            raise EvaluateError(f"{override.input_line}: {str(e).splitlines()[0]}") from e
    validate(cfg)
    return cfg


def _num_outputs(state: dict) -> int:
    """Classes the saved model predicts: the rows of its last weight matrix (the head)."""
    return [v for k, v in state.items() if k.endswith("weight") and v.dim() == 2][-1].shape[0]


def load_model(cfg, run_dir: Path, data, device: torch.device):
    path = run_dir / MODEL
    if not path.is_file():
        raise EvaluateError(f"{run_dir} has no {MODEL}: the run did not finish, or ran with trainer.save_model=false")
    try:  # tensors only: a model.pt planted in a run directory must not run code
        state = load_plain(path)
    except CheckpointError as e:
        raise EvaluateError(f"{e}; train the run again (trainer.resume=false) to rebuild its {MODEL}") from e
    if not (isinstance(state, dict) and state and all(isinstance(v, torch.Tensor) for v in state.values())):
        raise EvaluateError(f"{path} is not a model's weights (a state dict of tensors); train the run again "
                            f"(trainer.resume=false) to rebuild it")
    image_shape = tuple(data.test_images.shape[1:])
    if _num_outputs(state) != data.num_classes:
        raise EvaluateError(f"data={cfg.data.name} has {data.num_classes} classes but the model in {path} predicts "
                            f"{_num_outputs(state)}; evaluate it on data with the classes it was trained on")
    channels = image_shape[0]
    model = build_model(cfg.model, data.num_classes, image_shape, torch.zeros(channels), torch.ones(channels))
    try:
        model.load_state_dict(state)  # the normalisation buffers (the training set's mean/std) come with it
    except RuntimeError as e:
        raise EvaluateError(f"the model in {path} does not fit {'x'.join(map(str, image_shape))} images of "
                            f"data={cfg.data.name}; use data.image_size or data with the training images' shape") from e
    return model.to(device).to(memory_format=torch.channels_last)


def evaluation_name(overrides: list[str]) -> str:
    """A file name for an evaluation: its overrides (`test` without any), with path-unsafe characters replaced."""
    name = ",".join(overrides) or "test"
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", name)[:150]


def evaluate_run(run_dir: Path, overrides: list[str], name: str | None = None) -> tuple[Path, dict]:
    """Evaluate the run in `run_dir` with `overrides`; write and return (path, results)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise EvaluateError(f"{run_dir} does not exist; give the directory of a finished run")
    cfg = apply_overrides(saved_config(run_dir), overrides)
    device = pick_device(cfg.trainer.device)
    data = load_data(cfg.data)
    model = load_model(cfg, run_dir, data, device)
    images, labels = data.test_images.to(device), data.test_labels.to(device)
    log.info("evaluating %s on %s (%d test images)", run_dir, cfg.data.name, len(labels))
    metrics = evaluate(model, images, labels, cfg.trainer.eval_batch_size, device)
    robustness = fgsm_accuracy(model, images, labels, list(cfg.eval.fgsm_eps), cfg.trainer.eval_batch_size, device)
    results = {
        "run_dir": str(run_dir),
        "overrides": list(overrides),
        "test_acc": metrics.acc,
        "test_loss": metrics.loss,
        "test_ece": metrics.ece,
        **{fgsm_key(eps): acc for eps, acc in robustness.items()},
        "num_test": len(labels),
        "device": str(device),
        "evaluated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "data": OmegaConf.to_container(cfg.data, resolve=True),
        "eval": OmegaConf.to_container(cfg.eval, resolve=True),
    }
    path = run_dir / "evaluations" / f"{name or evaluation_name(overrides)}.json"
    write_json(path, results)
    return path, results


