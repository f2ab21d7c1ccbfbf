"""What the Hydra plugins of this package's sweepers share (hydra_plugins/mixupexp_*_sweeper): a Sweeper that
keeps Hydra's context and config and instantiates the configured launcher, as Hydra's basic sweeper does, and the
fields their config nodes take from the settings classes (so that a key is defined once). Each plugin adds only
its node and the call of its sweep. Light on purpose: Hydra imports every plugin module at start-up, single runs
and tab completion included."""

from __future__ import annotations

from dataclasses import MISSING, field, fields
from typing import Optional

from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


def config_fields(settings_class, only=None, skip=()) -> list:
    """(name, type, field) of a settings dataclass's keys (those in `only`, else all but `skip`), with their
    defaults, for dataclasses.make_dataclass: a plugin's config node built from them."""
    return [(f.name, f.type, field(default=f.default) if f.default is not MISSING else
             field(default_factory=f.default_factory))
            for f in fields(settings_class) if (only is None or f.name in only) and f.name not in skip]


class LaunchingSweeper(Sweeper):
    hydra_context: Optional[HydraContext] = None
    config: Optional[DictConfig] = None
    launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.hydra_context = hydra_context
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def ready(self) -> tuple[DictConfig, object, object]:
        """(config, config_loader, launcher), once setup() has run."""
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        return self.config, self.hydra_context.config_loader, self.launcher
