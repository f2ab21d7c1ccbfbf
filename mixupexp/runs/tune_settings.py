"""The settings of a tuning sweep (hydra.sweeper.* of `hydra/sweeper=tune`), defined once: `TuneSettings` is what
the study computes with, and the Hydra plugin builds its config node from its fields.

No `from __future__ import annotations`: the fields' types are read as types by the plugin. Light on purpose:
Hydra imports the plugin at start-up.
"""

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mixupexp.config.schema import ConfigError
from mixupexp.runs.sequential_settings import Settings
from mixupexp.runs.tune_race import MAX_SEEDS, MIN_SEEDS, TOLERANCE, RaceSettings

SAMPLERS = ("tpe", "random", "grid")
TUNE_EXTRA = 'pip install -e ".[tune]"'


@dataclass(frozen=True)
class TuneSettings:
    """hydra.sweeper.* of a tuning sweep; `confirm` is the sequential design of the confirmation."""

    n_trials: int = 20
    seeds_per_trial: int = 3  # racing=false: every trial runs seeds 0..seeds_per_trial-1; its objective their mean
    sampler: str = "tpe"  # tpe, random or grid
    sampler_seed: int = 0
    trials_per_batch: int = 1  # trials launched together (their seeds side by side where the launcher allows)
    confirm: Settings = field(default_factory=Settings)  # of it, the keys CONFIRM_KEYS (its first seed follows)
    # Racing (runs/tune_race.py), the default since it was measured better (docs/tuning.md): seeds per trial from
    # min_seeds_per_trial up to max_seeds_per_trial, as the race against the incumbent needs them; seeds_per_trial
    # is then unused but as the fixed design's count, racing=false, that the summary compares the runs with.
    racing: bool = True
    min_seeds_per_trial: int = MIN_SEEDS
    max_seeds_per_trial: int = MAX_SEEDS
    tune_tolerance: float = TOLERANCE

    @classmethod
    def of(cls, sweeper: Any) -> "TuneSettings":
        """From a composed `hydra.sweeper` node (or a mapping) of the tune sweeper."""
        plain = OmegaConf.to_container(sweeper, resolve=True) if isinstance(sweeper, DictConfig) else dict(sweeper)
        values = {key: plain[key] for key in asdict(cls()) if key in plain and key != "confirm"}
        confirm = plain.get("confirm") or {}
        return cls(**values, confirm=Settings(**{key: confirm[key] for key in asdict(Settings()) if key in confirm}))

    def confirmation(self) -> Settings:
        """The confirmation's design: its seeds start above the search's."""
        return Settings(**{**asdict(self.confirm), "first_seed": self.search_seeds()})

    def search_seeds(self) -> int:
        """The search runs seeds 0..search_seeds()-1 (a raced trial some of them): the most seeds one trial runs."""
        return self.max_seeds_per_trial if self.racing else self.seeds_per_trial

    def race(self) -> RaceSettings:
        return RaceSettings(self.min_seeds_per_trial, self.max_seeds_per_trial, self.tune_tolerance)

    def seeds_signature(self) -> Any:
        """What a trial's seeds depend on: seeds_per_trial, or the race's settings (a study's trials cannot be
        mixed with those of another)."""
        if not self.racing:
            return self.seeds_per_trial
        return {"racing": True, "min_seeds_per_trial": self.min_seeds_per_trial,
                "max_seeds_per_trial": self.max_seeds_per_trial, "tune_tolerance": self.tune_tolerance}

    def check(self) -> None:
        """ConfigError, one line naming the key as typed, for the first setting that cannot work."""
        for key, least in (("n_trials", 1), ("seeds_per_trial", 1), ("trials_per_batch", 1), ("sampler_seed", 0)):
            value = getattr(self, key)
            if not isinstance(value, int) or value < least:
                raise ConfigError(f"hydra.sweeper.{key}={value} must be an integer >= {least}; e.g. "
                                  f"hydra.sweeper.{key}={getattr(TuneSettings(), key)} (the default)")
        if not isinstance(self.racing, bool):
            raise ConfigError(f"hydra.sweeper.racing={self.racing} must be true or false")
        if not isinstance(self.min_seeds_per_trial, int) or self.min_seeds_per_trial < 1:
            raise ConfigError(f"hydra.sweeper.min_seeds_per_trial={self.min_seeds_per_trial} must be an integer >= 1 "
                              f"(the seeds a raced trial starts on); e.g. hydra.sweeper.min_seeds_per_trial={MIN_SEEDS}"
                              " (the default)")
        if not isinstance(self.max_seeds_per_trial, int) or self.max_seeds_per_trial < self.min_seeds_per_trial:
            raise ConfigError(f"hydra.sweeper.max_seeds_per_trial={self.max_seeds_per_trial} must be an integer >= "
                              f"hydra.sweeper.min_seeds_per_trial ({self.min_seeds_per_trial}); e.g. "
                              f"hydra.sweeper.max_seeds_per_trial={max(MAX_SEEDS, self.min_seeds_per_trial)}")
        if isinstance(self.tune_tolerance, bool) or not isinstance(self.tune_tolerance, (int, float)) \
                or not self.tune_tolerance >= 0 or not math.isfinite(self.tune_tolerance):
            raise ConfigError(f"hydra.sweeper.tune_tolerance={self.tune_tolerance} must be a number >= 0 (points of "
                              f"validation accuracy); e.g. hydra.sweeper.tune_tolerance={TOLERANCE} (the default)")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"hydra.sweeper.sampler={self.sampler} is not a sampler; choose one of "
                              f"{', '.join(SAMPLERS)} (tpe, the default, learns from the trials so far)")
        try:
            self.confirmation().check()
        except ConfigError as e:
            raise ConfigError(str(e).replace("hydra.sweeper.", "hydra.sweeper.confirm.")) from None

    def text(self) -> str:
        sampler = f"sampler {self.sampler} (seed {self.sampler_seed}), objective the mean validation accuracy"
        if self.racing:
            least = self.min_seeds_per_trial
            return (f"{self.n_trials} trials raced against the incumbent on seeds 0-{self.max_seeds_per_trial - 1} "
                    f"(each from {least} seed{'s' * (least != 1)}, dropped once shown more than "
                    f"{self.tune_tolerance:g} points worse), {sampler}")
        return f"{self.n_trials} trials of {self.seeds_per_trial} seeds (0-{self.seeds_per_trial - 1}), {sampler}"

    def max_runs(self) -> int:
        return self.n_trials * self.search_seeds() + 2 * self.confirm.max_seeds
