"""A tuning sweep's command line, before anything runs: its checks, and its jobs for the dry run, the check of
the run directories and the end-of-sweep account (command_plan.py calls it).

The configs at every end and every choice of the space are composed and checked as any job is, so that a value
that cannot work stops the command in one line before the first trial. The jobs are the runs the study has
started so far (tune.json), since the sampler chooses the next ones only as the trials end.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from omegaconf import DictConfig

from mixupexp.config.schema import ConfigError
from mixupexp.records.identity import run_name
from mixupexp.runs.tune_design import (
    STUDY_FILE,
    Record,
    TuneSettings,
    check_command,
    check_validation,
    is_tune,
    plan_lines_new,
)
from mixupexp.runs.tune_settings import TUNE_EXTRA
from mixupexp.runs.tune_space import SWEEPER_CHOICE, Space

__all__ = ["TunePlan", "is_tune", "plan_tune"]


@dataclass
class TunePlan:
    settings: TuneSettings
    space: Space
    record: Optional[Record]
    corners: list[tuple[list[str], DictConfig]]  # the space's ends, composed and checked
    jobs: list[tuple[list[str], DictConfig, str, Path]]  # (overrides, config, run name, run directory) each

    def lines(self) -> list[str]:
        lines = plan_lines_new(self.settings, self.space)
        if self.record is not None:
            lines[1:1] = self.record.plan_lines(self.settings)[1:]
        return lines


def plan_tune(sweep_dir: Optional[Path], overrides: list[str], hydra_cfg: DictConfig,
              compose_job: Callable[[list[str]], DictConfig]) -> TunePlan:
    """Check the command line of a tuning sweep and list the runs it has started; `compose_job` composes and
    validates one job's config. ConfigError (one line) for what cannot work."""
    settings, space = check_command(overrides, hydra_cfg)
    if importlib.util.find_spec("optuna") is None:
        raise ConfigError(f"{SWEEPER_CHOICE} needs Optuna, which is not installed; install it with {TUNE_EXTRA}")
    if sweep_dir is None:
        raise ConfigError(f"{SWEEPER_CHOICE} keeps its study in the sweep's directory, and hydra.sweep.dir names "
                          "values only a running job has; give it a fixed one, hydra.sweep.dir=DIR")
    corners = []
    for corner in space.corner_overrides():
        cfg = compose_job(corner)
        check_validation(cfg)
        corners.append((corner, cfg))
    check_study_file(sweep_dir / STUDY_FILE)
    record = Record.read(sweep_dir)
    if record is not None:
        record.check_same_study(settings, space, sweep_dir)
    jobs = []
    for job_overrides, run_dir in (record.run_jobs() if record is not None else []):
        cfg = compose_job(job_overrides)
        jobs.append((job_overrides, cfg, run_name(cfg), sweep_dir / run_dir))
    return TunePlan(settings, space, record, corners, jobs)


def check_study_file(path: Path) -> None:
    """ConfigError, one line, where the sweep's study.db is there but is not a whole SQLite database (truncated,
    its first bytes garbled): Optuna would fail on it with a traceback from inside its storage. Read only, with
    the standard library's sqlite3, before anything is written."""
    if not path.exists():
        return
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            problem = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.Error as e:
        problem = str(e)
    if problem != "ok":
        raise ConfigError(f"{path} cannot be read as the study's storage ({problem}); move it away to start the "
                          f"search again in this directory, or run in another one (hydra.sweep.dir=DIR)")
