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
from typing import Any, Optional, Sequence

from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf, open_dict

from mixupexp.config.schema import ConfigError
from mixupexp.records.checkpoint import RESULT
from mixupexp.records.identity import run_name
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.sequential_design import SWEEPER_TARGET as SEQUENTIAL_TARGET
from mixupexp.runs.sequential_design import Design
from mixupexp.runs.sequential_sweep import run_rounds
from mixupexp.runs.tune_design import (
    BATCH,
    COMPLETE,
    CONFIRM_DIR,
    FAILED,
    OBJECTIVE,
    PRUNED,
    RUNNING,
    SEARCH_DIR,
    STUDY_FILE,
    Record,
    Trial,
    TuneSettings,
    baseline_overrides,
    confirmation_alpha,
    new_record,
    seed_overrides,
    study_signature,
)
from mixupexp.runs.tune_race import FAILED as RACE_FAILED
from mixupexp.runs.tune_settings import TUNE_EXTRA
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
    signature = study_signature(space.record(), space.fixed, settings.seeds_signature())
    found = study.user_attrs.get("signature")
    if found is None:
        study.set_user_attr("signature", signature)
    elif found != signature:
        raise ConfigError(f"{sweep_dir / STUDY_FILE} holds a study of another space or of other seeds a trial "
                          "(seeds_per_trial, or the race's settings); run this "
                          "command in another directory (hydra.sweep.dir=DIR), or the study's own command again")
    return study


class TrialRuns:
    """Where the runs of each trial go, and what they say: composed once per trial."""

    def __init__(self, config: DictConfig, config_loader, search_dir: Path, seeds: int):
        self.config, self.config_loader, self.search_dir, self.seeds = config, config_loader, search_dir, seeds
        self._dirs: dict[tuple[str, ...], list[Path]] = {}

    def job_overrides(self, overrides: list[str], seeds: Optional[int] = None) -> list[list[str]]:
        return [seed_overrides(overrides, seed, self.search_dir) for seed in range(self.seeds if seeds is None
                                                                                     else seeds)]

    def run_dirs(self, overrides: list[str], seeds: Optional[int] = None) -> list[Path]:
        """The run directories of seeds 0..seeds-1 (seeds_per_trial unless said), composed once each."""
        seeds = self.seeds if seeds is None else seeds
        dirs = self._dirs.setdefault(tuple(overrides), [])
        for job in self.job_overrides(overrides, seeds)[len(dirs):]:
            dirs.append(self.search_dir / run_name(self.config_loader.load_sweep_config(self.config, job)))
        return dirs[:seeds]

    def read(self, trial: Trial, seeds: Optional[int] = None) -> None:
        """Fill in the trial's runs (of seeds 0..seeds-1, seeds_per_trial unless said), and its state and
        objective if every run has ended."""
        seeds = self.seeds if seeds is None else seeds
        trial.runs, values, failed = [], [], []
        for seed, run_dir in enumerate(self.run_dirs(trial.overrides, seeds)):
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
        elif len(values) == seeds:
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
    if settings.racing:
        settled, job_index = race_trials(settings, space, study, runs, record, n_trials, launcher, returns)
        if not settled:
            return returns
    while not settings.racing:
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


def race_trials(settings: TuneSettings, space: Space, study, runs: TrialRuns, record: Record, n_trials: int,
                launcher, returns: list) -> tuple[bool, int]:
    """The trials of a raced study (runs/tune_race.py), batch by batch and round by round; (whether the race
    settled, the next job index). Everything is replayed from the runs on disk after every launch, so a study
    started again goes on from the round it stood at, and trains no finished run again."""
    race_settings = settings.race()
    distributions = {p.key: p.distribution() for p in space.parameters}
    sweep_dir = runs.search_dir.parent
    launched: set[tuple[int, int]] = set()
    job_index = 0
    while True:
        frozen = _raced_trials(study, distributions)
        record.trials = [_trial(t, space) for t in frozen]
        race, statuses = _replay(record, runs, race_settings)
        for trial in record.trials:
            _tell_race(study, frozen, race.entries.get(trial.number), trial, statuses[trial.number])
        record.incumbent = race.incumbent
        record.write(sweep_dir)
        if race.open:
            jobs = [(t.number, seed) for t in record.trials if t.state != FAILED
                    for seed in range(race.entries[t.number].seeds) if statuses[t.number].get(seed) is None]
            stuck = sorted({n for n, seed in jobs if (n, seed) in launched} if jobs else
                           {n for n, entry in race.entries.items() if entry.stop is None})
            if stuck:  # launched in this process and neither finished nor failed: a clash, a refusal
                log.error("trial%s %s cannot go on: not every run finished; the account below names them",
                          "s" * (len(stuck) != 1), ", ".join(map(str, stuck)))
                return False, job_index
            by_number = {t.number: t for t in record.trials}
            for number in sorted({n for n, _ in jobs}):
                trial = by_number[number]
                seeds = [seed for n, seed in jobs if n == number]
                role = "incumbent" if number == race.incumbent else f"round {race.entries[number].rounds}"
                log.info("trial %d of %d (%s): %s, seed%s %s", number, n_trials, role, " ".join(
                    p.override(trial.values[p.key]) for p in space.parameters), "s" * (len(seeds) != 1),
                    ", ".join(map(str, seeds)))
            overrides = [seed_overrides(by_number[n].overrides, seed, runs.search_dir) for n, seed in jobs]
            results = launcher.launch(overrides, initial_job_idx=job_index)
            for result in results:
                _ = result.return_value  # raises the job's exception, as the basic sweeper does
            job_index += len(overrides)
            returns.append(results)
            launched.update(jobs)
            continue
        if len(frozen) >= n_trials:
            log.info("race settled: %d trials in %d runs (the fixed design's %d seeds a trial: %d); incumbent: "
                     "trial %s", len(frozen), race.runs(), settings.seeds_per_trial,
                     len(frozen) * settings.seeds_per_trial, race.incumbent)
            return True, job_index
        batch = 1 + max((t.user_attrs[BATCH] for t in frozen), default=-1)
        for _ in range(min(settings.trials_per_batch, n_trials - len(frozen))):
            study.sampler = make_sampler(settings, space, len(study.get_trials(deepcopy=False)))
            asked = study.ask(distributions)
            asked.set_user_attr(BATCH, batch)


def _raced_trials(study, distributions) -> list:
    """The study's raced trials in the order they were asked; a trial a kill cut short while it was being asked
    (without its values or its batch) is failed and not counted as one."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    whole = [t for t in trials if set(t.params) == set(distributions) and BATCH in t.user_attrs]
    for t in trials:
        if t.state == TrialState.RUNNING and t not in whole:
            tell(study, t.number, state=TrialState.FAIL)
    return whole


def _replay(record: Record, runs: TrialRuns, settings):
    """The race of the record's trials from the runs on disk: (the race, each trial's runs' statuses by seed,
    None for a run to launch or resume). Each trial's runs are read as far as the race has scheduled them."""
    from mixupexp.runs.tune_race import replay

    batches: dict[int, list[int]] = {}
    for trial in record.trials:
        batches.setdefault(trial.batch, []).append(trial.number)
    order = [batches[b] for b in sorted(batches)]
    values: dict[int, dict[int, float]] = {t.number: {} for t in record.trials}
    statuses: dict[int, dict[int, Any]] = {t.number: {} for t in record.trials}
    failed: set[tuple[int, int]] = set()
    read: dict[int, int] = {}
    while True:
        race = replay(order, values, failed, settings)
        scheduled = race.scheduled()
        if all(read.get(t.number, 0) >= scheduled.get(t.number, 0) for t in record.trials):
            break
        for trial in record.trials:
            seeds = scheduled.get(trial.number, 0)
            if read.get(trial.number, 0) >= seeds:
                continue
            runs.read(trial, seeds)
            read[trial.number] = seeds
            for run in trial.runs:
                if run["status"] in FAILURES or (run["status"] == RunStatus.OK and run[OBJECTIVE] is None):
                    failed.add((trial.number, run["seed"]))  # failed, or finished without a validation accuracy
                if run[OBJECTIVE] is not None:
                    values[trial.number][run["seed"]] = run[OBJECTIVE]
                # None: a run to launch (new, unfinished, or its result.json unreadable, as without racing)
                statuses[trial.number][run["seed"]] = (
                    None if run[OBJECTIVE] is None and run["status"] not in FAILURES else run["status"])
    for trial in record.trials:  # the runs as scheduled, each trial's state and stop as the race left them
        entry = race.entries.get(trial.number)
        seeds = entry.seeds if entry else 0
        if read.get(trial.number, 0) != seeds:  # (read above as far as the race scheduled it, mostly)
            runs.read(trial, seeds)
        trial.stop = (entry.stop or "") if entry else ""
        trial.state = (RUNNING if not trial.stop else FAILED if trial.stop == RACE_FAILED else
                       PRUNED if entry.dropped else COMPLETE)
        done = [run[OBJECTIVE] for run in trial.runs if run[OBJECTIVE] is not None]
        trial.objective = sum(done) / len(done) if done and len(done) == seeds else None
    return race, statuses


def _tell_race(study, frozen, entry, trial: Trial, statuses) -> None:
    """Tell the study a raced trial that has stopped: pruned with its partial mean as its intermediate value
    (at step = its seeds), failed, or complete with its mean."""
    import optuna
    from optuna.trial import TrialState

    stored = next(t for t in frozen if t.number == trial.number)
    if entry is None or stored.state != TrialState.RUNNING or not trial.stop:
        return
    if trial.state == PRUNED:
        optuna.trial.Trial(study, stored._trial_id).report(trial.objective, step=len(trial.runs))
        tell(study, trial.number, state=TrialState.PRUNED)
        log.info("trial %d: %s (mean validation accuracy %.2f %% on %d seed%s, %+.2f points against trial %d; "
                 "bound %+.2f)", trial.number, trial.stop, trial.objective, len(trial.runs),
                 "s" * (len(trial.runs) != 1), entry.mean_difference, entry.against, entry.upper)
    elif trial.state == FAILED:
        tell(study, trial.number, state=TrialState.FAIL)
        log.error("trial %d failed: %s", trial.number, trial.why or "a run failed")
    else:
        tell(study, trial.number, trial.objective)
        log.info("trial %d: %s (mean validation accuracy %.2f %% on %d seed%s)", trial.number, trial.stop,
                 trial.objective, len(trial.runs), "s" * (len(trial.runs) != 1))


def tell(study, number: int, value: float | None = None, state=None) -> None:
    """study.tell, through a sampler whose after_trial does nothing: the grid sampler's calls study.stop() once
    the grid is exhausted, which raises outside study.optimize, before the trial's value is stored."""
    from optuna.samplers import RandomSampler

    study.sampler = RandomSampler()
    study.tell(number, value, state=state)


def _trial(frozen, space: Space) -> Trial:
    from optuna.trial import TrialState

    state = {TrialState.COMPLETE: COMPLETE, TrialState.FAIL: FAILED, TrialState.PRUNED: PRUNED}.get(frozen.state,
                                                                                                 RUNNING)
    values = dict(frozen.params)
    return Trial(frozen.number, values, space.trial_overrides(values), state,
                 frozen.value if frozen.state == TrialState.COMPLETE else None, batch=frozen.user_attrs.get(BATCH))


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
