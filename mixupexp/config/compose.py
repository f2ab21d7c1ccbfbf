"""Composing the config the way `python -m mixupexp.train` does, outside of a Hydra run (the dry run, --help,
evaluate, the tests): one place that names the config package and clears Hydra's global state around it."""

from __future__ import annotations

from contextlib import contextmanager
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Iterator, Optional

from hydra import compose, initialize_config_dir, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import mixupexp.config.schema  # noqa: F401  (registers the structured config the configs' defaults name)

# The configs in conf/ ship inside the package under this name (pyproject.toml).
CONFIG_MODULE = "mixupexp.conf"
CONFIG_NAME = "config"
VERSION_BASE = "1.3"


def checkout_conf() -> Optional[Path]:
    """The conf/ folder of the checkout this code runs from, or None for an installed package.

    An editable install maps `mixupexp.conf` to the conf/ of the checkout it was installed from; another clone
    that shares its virtual environment (PYTHONPATH=the clone) would import its own code but compose the
    installed checkout's configs. Code that stands in a checkout therefore reads the configs beside it."""
    root = Path(__file__).resolve().parents[2]
    conf = root / "conf"
    if (conf / f"{CONFIG_NAME}.yaml").is_file() and (root / "pyproject.toml").is_file():
        return conf
    return None


def config_folder() -> Traversable:
    """The folder of the configs that `python -m mixupexp.train` composes (see checkout_conf)."""
    return checkout_conf() or resources.files(CONFIG_MODULE)


# For @hydra.main: an absolute folder, or the config package of an installed mixupexp.
CONFIG_PATH = str(checkout_conf() or f"pkg://{CONFIG_MODULE}")


@contextmanager
def composing() -> Iterator[None]:
    """A block in which `hydra.compose` composes mixupexp's config; Hydra's global state is clear before and after,
    so that it also works inside a process that ran Hydra before (a test, a launcher's worker)."""
    GlobalHydra.instance().clear()
    try:
        conf = checkout_conf()
        initialize = (initialize_config_dir(config_dir=str(conf), version_base=VERSION_BASE) if conf else
                      initialize_config_module(config_module=CONFIG_MODULE, version_base=VERSION_BASE))
        with initialize:
            yield
    finally:
        GlobalHydra.instance().clear()


def compose_config(overrides: list[str] = (), return_hydra_config: bool = False):
    """The composed config of `python -m mixupexp.train OVERRIDES`."""
    with composing():
        return compose(config_name=CONFIG_NAME, overrides=list(overrides), return_hydra_config=return_hydra_config)
