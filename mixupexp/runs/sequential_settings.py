"""The settings of a sequential design, defined once: `Settings` is what a sequential sweep (and a tuning
study's confirmation) computes with, and the Hydra config nodes of both sweepers take their keys, types and
defaults from its fields (runs/sweeper_shim.py, config_fields), so that a key is added, renamed or given another
default here only.

No `from __future__ import annotations`: the fields' types are read as types by the Hydra plugins, which build
their structured configs from them. Light on purpose: Hydra imports those plugins at start-up.
"""

import math
from dataclasses import asdict, dataclass
from typing import Any

from mixupexp.analysis import sequential as seq
from mixupexp.config.schema import ConfigError

CONFIRM_KEYS = ("min_seeds", "max_seeds", "seeds_per_round", "smallest_effect", "alpha")
"""The keys a tuning study's confirmation takes (hydra.sweeper.confirm.*): its first seed follows the search's."""


@dataclass(frozen=True)
class Settings:
    """hydra.sweeper.* of a sequential sweep."""

    min_seeds: int = seq.MIN_SEEDS
    max_seeds: int = seq.MAX_SEEDS
    seeds_per_round: int = seq.SEEDS_PER_ROUND
    smallest_effect: float = seq.SMALLEST_EFFECT
    alpha: float = seq.ALPHA
    # The seed of round 0's first run: a confirmation on fresh seeds starts above the seeds a search used.
    first_seed: int = 0
    design: str = seq.DESIGN
    assumed_sd: Any = None  # points, for `python -m mixupexp.plan` only; None: from the runs, else a default

    @classmethod
    def of(cls, sweeper: Any) -> "Settings":
        """From a composed `hydra.sweeper` node (or a mapping) of the sequential sweeper."""
        return cls(**{key: sweeper[key] for key in asdict(cls()) if key in sweeper})

    def check(self) -> None:
        """ConfigError with one line naming the key as typed, for the first setting that cannot work."""
        try:
            seq.check_settings(self.alpha, self.smallest_effect, self.min_seeds, self.max_seeds, self.seeds_per_round)
        except ValueError as e:
            raise ConfigError(f"{e}; set it on the command line, e.g. {self._example(str(e))}") from None
        if self.first_seed < 0:
            raise ConfigError(f"{KEY_FIRST_SEED}={self.first_seed} must be >= 0; e.g. {KEY_FIRST_SEED}=0 (the default)")
        try:
            seq.check_design(self.design)
        except ValueError as e:
            raise ConfigError(f"{e}; e.g. {seq.KEY_DESIGN}={seq.DESIGN} (the default)") from None
        if self.assumed_sd is not None and not _positive_number(self.assumed_sd):
            raise ConfigError(f"{KEY_ASSUMED_SD}={self.assumed_sd} must be a number > 0 (the sd of a paired "
                              f"difference, in accuracy points), e.g. {KEY_ASSUMED_SD}=1.41")
        from mixupexp.training.validate import SEED_MAX  # here: the Hydra plugins import this module at start-up

        last = self.first_seed + self.max_seeds - 1
        if last > SEED_MAX:  # found here, not by the round that would reach it
            raise ConfigError(f"{KEY_FIRST_SEED}={self.first_seed} with {seq.KEY_MAX_SEEDS}={self.max_seeds} would "
                              f"run seeds up to {last}, and seeds must be in [0, {SEED_MAX}]; use {KEY_FIRST_SEED}="
                              f"{SEED_MAX - self.max_seeds + 1} or less")

    def _example(self, message: str) -> str:
        key = message.split("=", 1)[0]
        if key == seq.KEY_MAX_SEEDS and self.min_seeds > seq.MAX_SEEDS:
            return f"{key}={self.min_seeds}"
        return f"{_EXAMPLES.get(key, key)} (the default)"

    @property
    def rounds(self) -> list[int]:
        return seq.round_bounds(self.min_seeds, self.seeds_per_round, self.max_seeds)

    def schedule(self) -> dict[str, int]:
        return {"min_seeds": self.min_seeds, "seeds_per_round": self.seeds_per_round, "max_seeds": self.max_seeds}

    def decide_kwargs(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "smallest_effect": self.smallest_effect, **self.schedule(), "design": self.design}

    def test(self):
        """What the comparisons are judged by (sequential.design_test): the e-value, or the planned boundaries."""
        return seq.design_test(self.design, self.rounds)

    def seed(self, index: int) -> int:
        """The seed of the index-th run of an arm (the rounds count runs from 0)."""
        return self.first_seed + index

    def text(self) -> str:
        seeds = f" from seed {self.first_seed}" if self.first_seed else ""
        return (f"{self.min_seeds} seeds{seeds}, then {self.seeds_per_round} a round while a comparison is open, up to "
                f"{self.max_seeds}; settled better/worse when the {interval_name(self.design)} interval excludes 0, "
                "within "
                f"±{self.smallest_effect:g} points when it lies inside; {_percent(self.alpha)} over every "
                "comparison of the sweep")


KEY_FIRST_SEED = "hydra.sweeper.first_seed"
KEY_ASSUMED_SD = "hydra.sweeper.assumed_sd"


def _positive_number(value: Any) -> bool:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool) and math.isfinite(number) and number > 0


def interval_name(design: str) -> str:
    """How the lines name a design's interval of Δ."""
    return "planned" if design == seq.PLANNED else "anytime-valid"
_EXAMPLES = {seq.KEY_MIN_SEEDS: f"{seq.KEY_MIN_SEEDS}={seq.MIN_SEEDS}",
             seq.KEY_MAX_SEEDS: f"{seq.KEY_MAX_SEEDS}={seq.MAX_SEEDS}",
             seq.KEY_SEEDS_PER_ROUND: f"{seq.KEY_SEEDS_PER_ROUND}={seq.SEEDS_PER_ROUND}",
             seq.KEY_SMALLEST_EFFECT: f"{seq.KEY_SMALLEST_EFFECT}={seq.SMALLEST_EFFECT:g}",
             seq.KEY_ALPHA: f"{seq.KEY_ALPHA}={seq.ALPHA:g}"}


def _percent(share: float) -> str:
    return f"{100 * share:g} %"

