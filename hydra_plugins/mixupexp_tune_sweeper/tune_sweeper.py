"""The Hydra side of `hydra/sweeper=tune`: its config node and the Sweeper class Hydra instantiates.

Hydra imports every module of the `hydra_plugins` namespace at start-up, single runs included, so this one stays
thin and imports neither Optuna (an optional extra) nor the study: mixupexp/runs/tune_sweep.py, when a sweep
starts.

No `from __future__ import annotations` here: Hydra executes this module before it is in sys.modules, where
dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass, field, make_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from mixupexp.runs import tune_race as race
from mixupexp.runs.sequential_settings import CONFIRM_KEYS, hydra_fields
from mixupexp.runs.sweeper_shim import LaunchingSweeper


# The sequential design that confirms the best trial against augment=none on fresh seeds: the keys of Settings
# (mixupexp/runs/sequential_settings.py) that a confirmation takes.
ConfirmConf = make_dataclass("ConfirmConf", hydra_fields(CONFIRM_KEYS))


@dataclass
class TuneSweeperConf:
    _target_: str = "hydra_plugins.mixupexp_tune_sweeper.tune_sweeper.TuneSweeper"
    n_trials: int = 20
    seeds_per_trial: int = 3  # racing=false: every trial runs seeds 0..seeds_per_trial-1; its objective their mean
    sampler: str = "tpe"  # tpe, random or grid
    sampler_seed: int = 0
    trials_per_batch: int = 1  # trials launched together (their seeds side by side where the launcher allows)
    confirm: ConfirmConf = field(default_factory=ConfirmConf)
    # Racing (mixupexp/runs/tune_race.py; the default, measured in docs/tuning.md): each trial from
    # min_seeds_per_trial seeds up to max_seeds_per_trial, dropped once shown worse than the incumbent by more than
    # tune_tolerance points; racing=false: the fixed design, seeds_per_trial seeds a trial.
    racing: bool = True
    min_seeds_per_trial: int = race.MIN_SEEDS
    max_seeds_per_trial: int = race.MAX_SEEDS
    tune_tolerance: float = race.TOLERANCE
    # A preset's search space, as for Hydra's sweepers: {key: "interval(0.05,2.0)"}.
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="tune", node=TuneSweeperConf, provider="mixupexp")


class TuneSweeper(LaunchingSweeper):
    """Searches the space on validation accuracy over seeds, then confirms the best trial on fresh seeds."""

    def __init__(self, n_trials: int, seeds_per_trial: int, sampler: str, sampler_seed: int, trials_per_batch: int,
                 confirm: Any, params: Optional[Dict[str, str]] = None, racing: bool = True,
                 min_seeds_per_trial: int = race.MIN_SEEDS, max_seeds_per_trial: int = race.MAX_SEEDS,
                 tune_tolerance: float = race.TOLERANCE) -> None:
        from mixupexp.runs.tune_design import TuneSettings

        self.settings = TuneSettings.of({"n_trials": n_trials, "seeds_per_trial": seeds_per_trial,
                                         "sampler": sampler, "sampler_seed": sampler_seed,
                                         "trials_per_batch": trials_per_batch, "confirm": dict(confirm),
                                         "racing": racing, "min_seeds_per_trial": min_seeds_per_trial,
                                         "max_seeds_per_trial": max_seeds_per_trial,
                                         "tune_tolerance": tune_tolerance})
        self.params = dict(params or {})

    def sweep(self, arguments: List[str]) -> Any:
        from mixupexp.runs.tune_space import read_space
        from mixupexp.runs.tune_sweep import tune

        config, config_loader, launcher = self.ready()
        return tune(self.settings, read_space(arguments, self.params), config=config, config_loader=config_loader,
                    launcher=launcher)
