"""The design of a tuning sweep (`hydra/sweeper=tune`): its settings, where its runs go, and its record.

A trial is one point of the search space run on seeds 0..k-1 (k = seeds_per_trial, the same seeds for every
trial, so trials are compared on equal terms); its objective is the mean of its runs' validation accuracy
(`val_acc` of the last epoch, on the `data.val_size` images held out of the training set). The test set plays no
part in the search. When the trials are done, the best trial's configuration and its baseline (augment=none with
the same other settings) are run on fresh seeds k, k+1, ... as a sequential sweep (runs/sequential_design.py), and
compared on the test set.

The sweep's directory holds `study.db` (Optuna's storage: what the sampler needs to go on), `tune.json` (every
trial with its values, state, objective and runs; the report reads it), `search/<run>` (the trials' runs) and
`confirm/` (a sequential sweep's directory: `python -m mixupexp.summarize DIR/confirm` summarises it on its own).
Run directories are named by the run, as in every sweep, so a study started again finds every finished run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from mixupexp.config.schema import ConfigError
from mixupexp.records.identity import SEED
from mixupexp.runs.sequential_design import BASELINE, RUN_NAME_SUBDIR
from mixupexp.runs.tune_settings import TuneSettings
from mixupexp.runs.tune_space import SWEEPER_CHOICE, Space, read_space

SWEEPER_TARGET = "hydra_plugins.mixupexp_tune_sweeper.tune_sweeper.TuneSweeper"
STUDY_FILE = "study.db"
RECORD_FILE = "tune.json"
SEARCH_DIR = "search"
CONFIRM_DIR = "confirm"  # confirm-trialN: the confirmation of trial N
OBJECTIVE = "val_acc"  # what a trial's runs are judged by: never the test set
COMPLETE, FAILED, RUNNING, PRUNED = "complete", "failed", "running", "pruned"
BATCH = "batch"  # the user attribute of a raced trial in study.db: the batch it was asked in


def is_tune(hydra_cfg: Any) -> bool:
    """Whether a composed `hydra` node selects the tune sweeper."""
    sweeper = hydra_cfg.get("sweeper") if hydra_cfg is not None else None
    return sweeper is not None and sweeper.get("_target_") == SWEEPER_TARGET


def check_command(overrides: list[str], hydra_cfg: DictConfig) -> tuple[TuneSettings, Space]:
    """What a tuning sweep needs of its command line before anything runs: settings that can work, a space
    that can be searched (by this sampler) and run directories named by the run. The configs at the space's
    ends are checked by the caller (command_plan.py), which composes them."""
    settings = TuneSettings.of(hydra_cfg.sweeper)
    settings.check()
    params = hydra_cfg.sweeper.get("params")
    space = read_space(overrides, OmegaConf.to_container(params, resolve=False) if params else {})
    if settings.sampler == "grid":
        for parameter in space.parameters:
            parameter.grid()
    subdir = OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir")
    if subdir != RUN_NAME_SUBDIR:
        raise ConfigError(f"hydra.sweep.subdir={subdir} cannot be used with {SWEEPER_CHOICE}: it finds each run by "
                          f"its name; leave hydra.sweep.subdir at its default, {RUN_NAME_SUBDIR}")
    return settings, space


def check_validation(cfg: DictConfig) -> None:
    """The objective is measured on a validation split: without one there is nothing to tune on but the test set."""
    if not cfg.data.get("val_size"):
        raise ConfigError(f"{SWEEPER_CHOICE} tunes on validation accuracy and the test set stays out of the search: "
                          "hold out a validation split, e.g. data.val_size=5000 (of CIFAR-10's 50 000 training "
                          "images; data=synthetic: data.val_size=200)")


def confirmation_alpha(sweep_dir: Path, trial: int, alpha: float) -> float:
    """The level of trial `trial`'s confirmation. A study extended with more trials may find a new best trial
    and confirm it too; each confirmation at alpha would let the chance of a false verdict grow with every
    extension. So the study's alpha is split: each new confirmation gets half of what the earlier ones left,
    alpha / 2, alpha / 4, ... (alpha / 2^j for the j-th), and all it ever runs stay within alpha together.
    A confirmation started before keeps the level it started with (its multirun.yaml)."""
    levels = {}
    for folder in sorted(Path(sweep_dir).glob(f"{CONFIRM_DIR}-trial*")):
        try:
            levels[folder.name] = float(OmegaConf.load(folder / "multirun.yaml").hydra.sweeper.alpha)
        except Exception:  # no multirun.yaml yet (a study killed while creating it): no level spent there
            continue
    own = f"{CONFIRM_DIR}-trial{trial}"
    if own in levels:
        return levels[own]
    return (alpha - sum(levels.values())) / 2


def baseline_overrides(overrides: list[str]) -> list[str]:
    """The baseline of a configuration: its overrides without those of the augmentation, and augment=none."""
    return [o for o in overrides if not o.split("=", 1)[0].lstrip("+~").startswith("augment")] + [f"augment={BASELINE}"]


def seed_overrides(overrides: list[str], seed: int, run_dir_parent: Path) -> list[str]:
    """A job's overrides: its configuration's, its seed, and the folder its run goes in."""
    return [*overrides, f"{SEED}={seed}", f"hydra.sweep.dir={run_dir_parent}"]


# ---- the record: tune.json ---------------------------------------------------------------------------------


@dataclass
class Trial:
    number: int
    values: dict[str, Any]  # the searched keys' values
    overrides: list[str]  # the trial's configuration, without seed
    state: str = RUNNING
    objective: Optional[float] = None  # mean val_acc over its runs
    runs: list[dict[str, Any]] = field(default_factory=list)  # seed, run_dir (relative), status, val_acc
    why: str = ""  # why it failed
    stop: str = ""  # raced: why it stopped (runs/tune_race.py), "" while it races
    batch: Optional[int] = None  # raced: the batch it was asked in


@dataclass
class Record:
    """tune.json: the settings, the space, the trials and the confirmation, as the sweeper left them."""

    settings: dict[str, Any]
    space: list[dict[str, Any]]
    space_text: str
    trials: list[Trial] = field(default_factory=list)
    chosen: Optional[int] = None  # the trial confirmed
    confirm: Optional[dict[str, Any]] = None  # dir, first_seed, chosen and baseline overrides, runs
    fixed: list[str] = field(default_factory=list)  # the overrides every trial shares
    incumbent: Optional[int] = None  # raced: the trial in the lead, the one confirmed

    def write(self, sweep_dir: Path) -> None:
        from mixupexp.records.files import write_json

        write_json(sweep_dir / RECORD_FILE, {**asdict(self), "objective": OBJECTIVE,
                                              "trials": [asdict(t) for t in self.trials]})

    @classmethod
    def read(cls, sweep_dir: Path) -> Optional["Record"]:
        """The record of a sweep directory; None if it has none. ConfigError for one that cannot be read."""
        path = Path(sweep_dir) / RECORD_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise ConfigError(f"{path} cannot be read ({type(e).__name__}: {e}); move it away to start the "
                              "study's record afresh (study.db keeps the trials)") from None
        data.pop("objective", None)
        data["trials"] = [Trial(**t) for t in data.get("trials", [])]
        return cls(**data)

    def check_same_study(self, settings: TuneSettings, space: Space, sweep_dir: Path) -> None:
        """ConfigError, before anything runs, when this directory's study searched another space or ran other
        seeds a trial: its trials cannot be mixed with this command's."""
        if study_signature(self.space, self.fixed, TuneSettings.of(self.settings).seeds_signature()) != \
                study_signature(space.record(), space.fixed, settings.seeds_signature()):
            raise ConfigError(f"{Path(sweep_dir) / RECORD_FILE} is the record of a study of another space, other "
                              f"fixed overrides or other seeds a trial (seeds_per_trial, or the race's settings) "
                              f"({self.space_text}); run this command "
                              "in another directory (hydra.sweep.dir=DIR), or that study's own command again")

    def finished(self) -> list[Trial]:
        return [t for t in self.trials if t.state in (COMPLETE, FAILED, PRUNED)]

    def best(self) -> Optional[Trial]:
        """The trial with the highest objective (the first of equals); raced, the incumbent."""
        if self.settings.get("racing") and self.incumbent is not None:
            lead = [t for t in self.trials if t.number == self.incumbent and t.objective is not None]
            if lead:
                return lead[0]
        complete = [t for t in self.trials if t.state == COMPLETE and t.objective is not None
                    and math.isfinite(t.objective)]
        return max(complete, key=lambda t: (t.objective, -t.number)) if complete else None

    def run_jobs(self) -> list[tuple[list[str], str]]:
        """(overrides with seed, run directory relative to the sweep's) of every run the study started."""
        jobs = [([*t.overrides, f"{SEED}={run['seed']}"], run["run_dir"]) for t in self.trials for run in t.runs]
        if self.confirm:
            jobs += [(run["overrides"], run["run_dir"]) for run in self.confirm.get("runs", [])]
        return jobs

    def plan_lines(self, settings: TuneSettings) -> list[str]:
        lines = [f"tuning sweep ({SWEEPER_CHOICE}): {self.space_text}; {settings.text()}"]
        done = self.finished()
        best = self.best()
        state = f"{len(done)} of {settings.n_trials} trials done"
        if settings.racing:
            state += f" ({sum(len(t.runs) for t in self.trials)} runs)"
        if best is not None:
            state += (f"; {'in the lead' if settings.racing else 'best so far'}: trial {best.number} ({', '.join(f'{k}={v}' for k, v in best.values.items())}), "
                      f"mean validation accuracy {best.objective:.2f} %")
        lines.append(state)
        if self.confirm:
            lines.append(f"confirmation of trial {self.confirm['trial']}: {len(self.confirm.get('runs', []))} runs "
                         f"so far in {self.confirm['dir']}/")
        return lines


def study_signature(space: list[dict[str, Any]], fixed: list[str], seeds_per_trial: Any) -> dict[str, Any]:
    """What a study's trials depend on, whatever the order the command line gave it in; `seeds_per_trial` is
    TuneSettings.seeds_signature() (the plain number without racing, as studies before racing stored it)."""
    return {"space": sorted(space, key=lambda p: p["key"]), "fixed": sorted(fixed), "seeds_per_trial": seeds_per_trial}


def new_record(settings: TuneSettings, space: Space) -> Record:
    return Record(settings={**asdict(settings), "confirm": asdict(settings.confirmation())},
                  space=space.record(), space_text=space.text(), fixed=list(space.fixed))


def plan_lines_new(settings: TuneSettings, space: Space) -> list[str]:
    return [f"tuning sweep ({SWEEPER_CHOICE}): {space.text()}; {settings.text()}",
            f"then the {'incumbent' if settings.racing else 'best trial'}'s configuration and augment=none on fresh "
            f"seeds from seed {settings.search_seeds()} "
            f"({settings.confirmation().text()}; the first confirmation at {settings.confirm.alpha / 2:g}, half the "
            f"study's alpha, each later one, of a new best, at half what is left); at most {settings.n_trials} · "
            f"{settings.search_seeds()} + 2 · {settings.confirm.max_seeds} = {settings.max_runs()} runs"]
