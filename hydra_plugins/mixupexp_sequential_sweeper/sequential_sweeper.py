"""The Hydra side of `hydra/sweeper=sequential`: its config node and the Sweeper class Hydra instantiates.

Hydra instantiates sweepers only from the `hydra_plugins` namespace and imports every module there at start-up,
single runs included, so this module stays thin: the rounds live in mixupexp/runs/sequential_sweep.py and are
imported when a sweep starts.

No `from __future__ import annotations` here: Hydra executes this module before it is in sys.modules, where
dataclasses cannot resolve string annotations.
"""

from dataclasses import field, make_dataclass
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore

from mixupexp.runs.sequential_settings import Settings
from mixupexp.runs.sweeper_shim import LaunchingSweeper, config_fields

# The keys of Settings (mixupexp/runs/sequential_settings.py: their types, defaults and meaning), and a preset's
# sweep (experiment=...), as for Hydra's basic sweeper; the seed is the sweeper's to choose.
SequentialSweeperConf = make_dataclass("SequentialSweeperConf", [
    ("_target_", str, field(default="hydra_plugins.mixupexp_sequential_sweeper.sequential_sweeper.SequentialSweeper")),
    *config_fields(Settings),
    ("params", Optional[Dict[str, str]], field(default=None)),
])


ConfigStore.instance().store(group="hydra/sweeper", name="sequential", node=SequentialSweeperConf,
                             provider="mixupexp")


class SequentialSweeper(LaunchingSweeper):
    """Runs the swept configurations in rounds of seeds until each comparison with its baseline is settled."""

    def __init__(self, params: Optional[Dict[str, str]] = None, **settings: Any) -> None:
        self.settings = Settings(**settings)
        self.params = dict(params or {})

    def sweep(self, arguments: List[str]) -> Any:
        from mixupexp.runs.sequential_sweep import sweep_in_rounds

        config, config_loader, launcher = self.ready()
        return sweep_in_rounds(self.settings, self.params, arguments, config=config, config_loader=config_loader,
                               launcher=launcher)
