"""The Hydra side of `hydra/sweeper=tune`: its config node and the Sweeper class Hydra instantiates.

Hydra imports every module of the `hydra_plugins` namespace at start-up, single runs included, so this one stays
thin and imports neither Optuna (an optional extra) nor the study: mixupexp/runs/tune_sweep.py, when a sweep
starts.

No `from __future__ import annotations` here: Hydra executes this module before it is in sys.modules, where
dataclasses cannot resolve string annotations.
"""

from dataclasses import field, make_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from mixupexp.runs.sequential_settings import CONFIRM_KEYS, Settings
from mixupexp.runs.sweeper_shim import LaunchingSweeper, config_fields
from mixupexp.runs.tune_settings import TuneSettings

# The sequential design that confirms the best trial against augment=none on fresh seeds: the keys of Settings
# (mixupexp/runs/sequential_settings.py) that a confirmation takes.
ConfirmConf = make_dataclass("ConfirmConf", config_fields(Settings, only=CONFIRM_KEYS))

# The keys of TuneSettings (mixupexp/runs/tune_settings.py: types, defaults, meaning; racing in runs/tune_race.py),
# the confirmation's node, and a preset's search space, as for Hydra's sweepers: {key: "interval(0.05,2.0)"}.
TuneSweeperConf = make_dataclass("TuneSweeperConf", [
    ("_target_", str, field(default="hydra_plugins.mixupexp_tune_sweeper.tune_sweeper.TuneSweeper")),
    *config_fields(TuneSettings, skip=("confirm",)),
    ("confirm", ConfirmConf, field(default_factory=ConfirmConf)),
    ("params", Optional[Dict[str, str]], field(default=None)),
])


ConfigStore.instance().store(group="hydra/sweeper", name="tune", node=TuneSweeperConf, provider="mixupexp")


class TuneSweeper(LaunchingSweeper):
    """Searches the space on validation accuracy over seeds, then confirms the best trial on fresh seeds."""

    def __init__(self, confirm: Any, params: Optional[Dict[str, str]] = None, **settings: Any) -> None:
        self.settings = TuneSettings.of({**settings, "confirm": dict(confirm)})
        self.params = dict(params or {})

    def sweep(self, arguments: List[str]) -> Any:
        from mixupexp.runs.tune_space import read_space
        from mixupexp.runs.tune_sweep import tune

        config, config_loader, launcher = self.ready()
        return tune(self.settings, read_space(arguments, self.params), config=config, config_loader=config_loader,
                    launcher=launcher)
