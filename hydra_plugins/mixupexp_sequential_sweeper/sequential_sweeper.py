"""The Hydra side of `hydra/sweeper=sequential`: its config node and the Sweeper class Hydra instantiates.

Hydra instantiates sweepers only from the `hydra_plugins` namespace and imports every module there at start-up,
single runs included, so this module stays thin: the rounds live in mixupexp/runs/sequential_sweep.py and are
imported when a sweep starts.

No `from __future__ import annotations` here: Hydra executes this module before it is in sys.modules, where
dataclasses cannot resolve string annotations.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from mixupexp.analysis import sequential as seq


@dataclass
class SequentialSweeperConf:
    _target_: str = "hydra_plugins.mixupexp_sequential_sweeper.sequential_sweeper.SequentialSweeper"
    min_seeds: int = seq.MIN_SEEDS
    max_seeds: int = seq.MAX_SEEDS
    seeds_per_round: int = seq.SEEDS_PER_ROUND
    smallest_effect: float = seq.SMALLEST_EFFECT
    alpha: float = seq.ALPHA
    first_seed: int = 0  # the seed of round 0's first run
    design: str = seq.DESIGN  # seq.PLANNED: boundaries for these rounds; seq.ANYTIME: valid under any change
    # The sd of a paired difference (points) that `python -m mixupexp.plan` prices the sweep with; None: estimated
    # from the finished runs, else the simulations' default. Typed Any so that a bad value gets the sweeper's own
    # one-line error, naming the key.
    assumed_sd: Any = None
    # A preset's sweep (experiment=...), as for Hydra's basic sweeper; the seed is the sweeper's to choose.
    params: Optional[Dict[str, str]] = None


ConfigStore.instance().store(group="hydra/sweeper", name="sequential", node=SequentialSweeperConf,
                             provider="mixupexp")


class SequentialSweeper(Sweeper):
    """Runs the swept configurations in rounds of seeds until each comparison with its baseline is settled."""

    def __init__(self, min_seeds: int, max_seeds: int, seeds_per_round: int, smallest_effect: float, alpha: float,
                 first_seed: int = 0, params: Optional[Dict[str, str]] = None, design: str = seq.DESIGN,
                 assumed_sd: Any = None) -> None:
        from mixupexp.runs.sequential_design import Settings

        self.settings = Settings(min_seeds=min_seeds, max_seeds=max_seeds, seeds_per_round=seeds_per_round,
                                 smallest_effect=smallest_effect, alpha=alpha, first_seed=first_seed, design=design,
                                 assumed_sd=assumed_sd)
        self.params = dict(params or {})
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: List[str]) -> Any:
        from mixupexp.runs.sequential_sweep import sweep_in_rounds

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        return sweep_in_rounds(self.settings, self.params, arguments, config=self.config,
                               config_loader=self.hydra_context.config_loader, launcher=self.launcher)
