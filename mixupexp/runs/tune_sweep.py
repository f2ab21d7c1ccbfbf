"""The trials of a tuning sweep (`hydra/sweeper=tune`) through Optuna's ask and tell, then the confirmation of the
best one on fresh seeds through the sequential sweep's rounds (runs/tune_design.py says what is where).

Each batch of trials is one `launcher.launch` of every seed of every trial in it, so a launcher that runs jobs
side by side (parallel, SLURM) runs a trial's seeds, and with trials_per_batch > 1 several trials, at once. A
trial's value is told to the study only when all its runs have finished. A study stopped midway (Ctrl-C, a kill)
leaves its asked trials `running` in study.db; started again with the same command, it runs them again first
(their finished runs are found in search/ and not trained again), so no trial is asked twice. The sampler is
seeded anew for each trial from (sampler_seed, trial number): a study started again asks for the trials an
unbroken one would have asked for.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf, open_dict

from mixupexp.config.schema import ConfigError
from mixupexp.runs.checkpoint import RESULT
from mixupexp.runs.identity import run_name
from mixupexp.runs.result import UnreadableResult, read_result
from mixupexp.runs.sequential_design import SWEEPER_TARGET as SEQUENTIAL_TARGET
from mixupexp.runs.sequential_design import Design
from mixupexp.runs.sequential_sweep import run_rounds
from mixupexp.runs.status import FAILURES, RunStatus
from mixupexp.runs.tune_design import (
    COMPLETE,
    CONFIRM_DIR,
    FAILED,
    OBJECTIVE,
    RUNNING,
    SEARCH_DIR,
    STUDY_FILE,
    TUNE_EXTRA,
    Record,
    Trial,
    TuneSettings,
    baseline_overrides,
    confirmation_alpha,
    new_record,
    seed_overrides,
    study_signature,
)
from mixupexp.runs.tune_space import SWEEPER_CHOICE, Space

log = logging.getLogger("mixupexp")
STUDY_NAME = "mixupexp-tune"


def import_optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError(f"{SWEEPER_CHOICE} needs Optuna, which is not installed; install it with {TUNE_EXTRA}") \
            from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep logs each trial itself
    return optuna


def make_sampler(settings: TuneSettings, space: Space, number: int):
    """The sampler for trial `number`, seeded from (sampler_seed, number): the same trials after a restart (the
    grid sampler draws from the points no trial has taken, which the study records)."""
    from optuna import samplers

    if settings.sampler == "grid":  # its seed orders the grid, so it stays one; the study records what was visited
        return samplers.GridSampler({p.key: p.grid() for p in space.parameters}, seed=settings.sampler_seed)
    seed = settings.sampler_seed * 1_000_003 + number
    if settings.sampler == "random":
        return samplers.RandomSampler(seed=seed)
    return samplers.TPESampler(seed=seed)


def grid_size(space: Space) -> int:
    return math.prod(len(p.grid()) for p in space.parameters)


def open_study(sweep_dir: Path, settings: TuneSettings, space: Space):
    """The study of the sweep directory (created, or loaded where a run of this command left it); ConfigError
    when it was started with another space or other settings, whose trials cannot be mixed with these."""
    optuna = import_optuna()
    study = optuna.create_study(study_name=STUDY_NAME, storage=f"sqlite:///{sweep_dir / STUDY_FILE}",
                                direction="maximize", load_if_exists=True)
    signature = study_signature(space.record(), space.fixed, settings.seeds_per_trial)
    found = study.user_attrs.get("signature")
    if found is None:
        study.set_user_attr("signature", signature)
    elif found != signature:
        raise ConfigError(f"{sweep_dir / STUDY_FILE} holds a study of another space or seeds_per_trial; run this "
                          "command in another directory (hydra.sweep.dir=DIR), or the study's own command again")
    return study


class TrialRuns:
    """Where the runs of each trial go, and what they say: composed once per trial."""

    def __init__(self, config: DictConfig, config_loader, search_dir: Path, seeds: int):
        self.config, self.config_loader, self.search_dir, self.seeds = config, config_loader, search_dir, seeds
        self._dirs: dict[tuple[str, ...], list[Path]] = {}

    def job_overrides(self, overrides: list[str]) -> list[list[str]]:
        return [seed_overrides(overrides, seed, self.search_dir) for seed in range(self.seeds)]

    def run_dirs(self, overrides: list[str]) -> list[Path]:
        key = tuple(overrides)
        if key not in self._dirs:
            self._dirs[key] = [self.search_dir / run_name(self.config_loader.load_sweep_config(self.config, job))
                               for job in self.job_overrides(overrides)]
        return self._dirs[key]

    def read(self, trial: Trial) -> None:
        """Fill in the trial's runs, and its state and objective if every run has ended."""
        trial.runs, values, failed = [], [], []
        for seed, run_dir in enumerate(self.run_dirs(trial.overrides)):
            entry: dict[str, Any] = {"seed": seed, "run_dir": str(run_dir.relative_to(self.search_dir.parent)),
                                     "status": None, OBJECTIVE: None}
            try:
                result = read_result(run_dir / RESULT)
            except UnreadableResult as e:
                result = {"status": f"unreadable {RESULT} ({e.problem})"}
            if result is not None:
                entry["status"] = result.get("status")
                if result.get("status") == RunStatus.OK and isinstance(result.get(OBJECTIVE), (int, float)):
                    entry[OBJECTIVE] = float(result[OBJECTIVE])
                    values.append(entry[OBJECTIVE])
                elif result.get("status") in FAILURES:
                    failed.append(f"seed {seed}: {result.get('status')}: {str(result.get('error', ''))[:120]}")
                elif result.get("status") == RunStatus.OK:
                    failed.append(f"seed {seed}: no {OBJECTIVE} in its {RESULT}")
            trial.runs.append(entry)
        if failed:
            trial.state, trial.objective, trial.why = FAILED, None, "; ".join(failed)
        elif len(values) == self.seeds:
            # The objective: the plain mean of the seeds' validation accuracies, as summary.md recomputes it.
            trial.state, trial.objective, trial.why = COMPLETE, sum(values) / len(values), ""


def tune(settings: TuneSettings, space: Space, *, config: DictConfig, config_loader,
         launcher) -> list[Sequence[JobReturn]]:
    """Run the study's trials, then the confirmation; return every launch's job returns."""
    from optuna.trial import TrialState

    settings.check()
    sweep_dir = Path(str(config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")  # as the basic sweeper does: the summary reads it
    study = open_study(sweep_dir, settings, space)
    n_trials = settings.n_trials
    if settings.sampler == "grid" and grid_size(space) < n_trials:
        log.info("the grid has %d points: %d trials, not %d", grid_size(space), grid_size(space), n_trials)
        n_trials = grid_size(space)
    distributions = {p.key: p.distribution() for p in space.parameters}
    runs = TrialRuns(config, config_loader, sweep_dir / SEARCH_DIR, settings.seeds_per_trial)
    record = new_record(settings, space)
    log.info("tuning sweep: %s; %s; at most %d runs", space.text(), settings.text(), settings.max_runs())
    returns: list[Sequence[JobReturn]] = []
    job_index = 0
    while True:
        trials = study.get_trials(deepcopy=False)
        # A trial a kill cut short while it was being asked lacks values: failed, and not counted as one.
        for frozen in trials:
            if frozen.state == TrialState.RUNNING and set(frozen.params) != set(distributions):
                tell(study, frozen.number, state=TrialState.FAIL)
        trials = study.get_trials(deepcopy=False)
        record.trials = [_trial(t, space) for t in trials if set(t.params) == set(distributions)]
        for trial in record.trials:
            runs.read(trial)
        record.write(sweep_dir)
        done = sum(t.state in (TrialState.COMPLETE, TrialState.FAIL) and set(t.params) == set(distributions)
                   for t in trials)
        # Trials asked by a run of this command that stopped before telling them: their values are fixed.
        untold = {t.number for t in trials if t.state == TrialState.RUNNING}
        batch = [t for t in record.trials if t.number in untold][:settings.trials_per_batch]
        if not batch:
            left = min(settings.trials_per_batch, n_trials - done)
            if left <= 0:
                break
            for _ in range(left):
                study.sampler = make_sampler(settings, space, len(study.get_trials(deepcopy=False)))
                asked = study.ask(distributions)
                batch.append(Trial(asked.number, dict(asked.params), space.trial_overrides(asked.params)))
            record.trials += batch  # recorded before they run: the dry run and the account at the end name them
            record.write(sweep_dir)
        for trial in batch:
            runs.read(trial)
        # Runs a stopped study finished are not launched again (on a cluster, each job waits in the queue).
        jobs = [job for trial in batch for job, run in zip(runs.job_overrides(trial.overrides), trial.runs)
                if run["status"] != RunStatus.OK]
        for trial in batch:
            log.info("trial %d of %d: %s, seeds 0-%d", trial.number, n_trials, " ".join(
                p.override(trial.values[p.key]) for p in space.parameters), settings.seeds_per_trial - 1)
        if jobs:
            results = launcher.launch(jobs, initial_job_idx=job_index)
            for result in results:
                _ = result.return_value  # raises the job's exception, as the basic sweeper does
            job_index += len(jobs)
            returns.append(results)
        stuck = []
        for trial in batch:
            runs.read(trial)
            if trial.state == COMPLETE:
                tell(study, trial.number, trial.objective)
                log.info("trial %d: mean validation accuracy %.2f %% (%s)", trial.number, trial.objective,
                         ", ".join(f"{run[OBJECTIVE]:.2f}" for run in trial.runs))
            elif trial.state == FAILED:
                tell(study, trial.number, state=TrialState.FAIL)
                log.error("trial %d failed: %s", trial.number, trial.why)
            else:
                stuck.append(trial)
        if stuck:  # a clash with another process, a refusal: the account at the end names the runs
            record.trials = [_trial(t, space) for t in study.get_trials(deepcopy=False)
                             if set(t.params) == set(distributions)]
            for trial in record.trials:
                runs.read(trial)
            record.write(sweep_dir)
            log.error("trial%s %s cannot go on: not every run finished; the account below names them",
                      "s" * (len(stuck) != 1), ", ".join(str(t.number) for t in stuck))
            return returns
    confirm_returns, _ = confirm(record, settings, config=config, config_loader=config_loader, launcher=launcher,
                                 job_index=job_index)
    return returns + confirm_returns


def tell(study, number: int, value: float | None = None, state=None) -> None:
    """study.tell, through a sampler whose after_trial does nothing: the grid sampler's calls study.stop() once
    the grid is exhausted, which raises outside study.optimize, before the trial's value is stored."""
    from optuna.samplers import RandomSampler

    study.sampler = RandomSampler()
    study.tell(number, value, state=state)


def _trial(frozen, space: Space) -> Trial:
    from optuna.trial import TrialState

    state = {TrialState.COMPLETE: COMPLETE, TrialState.FAIL: FAILED}.get(frozen.state, RUNNING)
    values = dict(frozen.params)
    return Trial(frozen.number, values, space.trial_overrides(values), state,
                 frozen.value if frozen.state == TrialState.COMPLETE else None)


def confirm_dir_name(trial: int) -> str:
    return f"{CONFIRM_DIR}-trial{trial}"


def confirm(record: Record, settings: TuneSettings, *, config: DictConfig, config_loader, launcher,
            job_index: int) -> tuple[list[Sequence[JobReturn]], int]:
    """Run the best trial's configuration and its baseline on fresh seeds, round by round, until their
    comparison on the test set is settled; record the runs in tune.json."""
    sweep_dir = Path(str(config.hydra.sweep.dir))
    best = record.best()
    if best is None:
        log.error("no trial finished: there is nothing to confirm")
        return [], job_index
    chosen, baseline = best.overrides, baseline_overrides(best.overrides)
    confirm_dir = sweep_dir / confirm_dir_name(best.number)
    design_settings = replace(settings.confirmation(),
                              alpha=confirmation_alpha(sweep_dir, best.number, settings.confirm.alpha))
    design = Design.build(design_settings, confirm_dir, [(o, config_loader.load_sweep_config(config, o))
                                                         for o in (baseline, chosen)])
    confirm_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(_sequential_config(config, design_settings, confirm_dir), confirm_dir / "multirun.yaml")
    log.info("best trial: %d (mean validation accuracy %.2f %%); confirming it against augment=none on fresh "
             "seeds in %s: %s", best.number, best.objective, confirm_dir, design_settings.text())
    record.chosen = best.number

    def write_record(planned: dict[str, list[int]]) -> None:  # the runs so far, and those of the next round
        record.confirm = {
            "dir": confirm_dir.name, "trial": best.number, "first_seed": design_settings.first_seed,
            "chosen": chosen, "baseline": baseline,
            "runs": [{"overrides": arm.job_overrides(index),
                      "run_dir": str(design.run_dir(arm, index).relative_to(sweep_dir)),
                      "role": "baseline" if arm.is_baseline else "chosen"}
                     for arm, index in design.jobs(design.read_runs(), planned)],
        }
        record.write(sweep_dir)

    found = design.read_runs(count_failed=set())
    write_record(design.next_round(found, design.decisions(found)))
    returns, job_index = run_rounds(design, launcher, job_index, [f"hydra.sweep.dir={confirm_dir}"])
    write_record({})
    return returns, job_index


def _sequential_config(config: DictConfig, settings, confirm_dir: Path) -> DictConfig:
    """The confirmation's multirun.yaml: the sweep's config as a sequential sweep's, so that the summary of its
    directory judges it as it was run."""
    from dataclasses import asdict

    node = copy.deepcopy(config)
    with open_dict(node):
        node.hydra.sweeper = OmegaConf.create({"_target_": SEQUENTIAL_TARGET, **asdict(settings), "params": None})
        node.hydra.sweep.dir = str(confirm_dir)
    return node
