"""Composing the config the way `python -m mixupexp.train` does, outside of a Hydra run (the dry run, --help,
evaluate, the tests): one place that names the config package and clears Hydra's global state around it."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

# The configs in conf/ ship inside the package under this name (pyproject.toml).
CONFIG_MODULE = "mixupexp.conf"
CONFIG_NAME = "config"
CONFIG_PATH = f"pkg://{CONFIG_MODULE}"  # for @hydra.main
VERSION_BASE = "1.3"


@contextmanager
def composing() -> Iterator[None]:
    """A block in which `hydra.compose` composes mixupexp's config; Hydra's global state is clear before and after,
    so that it also works inside a process that ran Hydra before (a test, a launcher's worker)."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base=VERSION_BASE):
            yield
    finally:
        GlobalHydra.instance().clear()


def compose_config(overrides: list[str] = (), return_hydra_config: bool = False):
    """The composed config of `python -m mixupexp.train OVERRIDES`."""
    with composing():
        return compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra_config)
