"""Check a command line before Hydra starts any job: every job of a sweep is composed and validated first.

A typo in one value of a 100-job sweep should cost one line and a second, not the 57 jobs before it. Errors are
printed as one line (`error: ...`) and exit with status 2; HYDRA_FULL_ERROR=1 shows the traceback instead.
"""

from __future__ import annotations

import os
import sys

from hydra import compose, initialize_config_module
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mixupexp.config import ConfigError, validate
from mixupexp.presets import without_preset_plus
from mixupexp.suggest import did_you_mean

CONFIG_MODULE, CONFIG_NAME = "mixupexp.conf", "config"


def one_line(error: BaseException, overrides: list[str] = ()) -> str:
    """Hydra's and OmegaConf's messages span lines (hints, search paths); keep what names the problem, and add
    the nearest valid override when one of `overrides` is misspelled."""
    message = _first_line(error)
    meant = did_you_mean(str(error), list(overrides)) if overrides else None
    return f"{message} (did you mean {meant}?)" if meant else message


def _first_line(error: BaseException) -> str:
    if isinstance(error, ConfigError):
        return str(error)
    cause = error.__cause__ or error.__context__
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = lines[0] if lines else type(error).__name__
    if message.startswith("Ambiguous value"):
        message += ": add --multirun to sweep over the values, or write [a,b] for a list"
    if isinstance(error, MissingConfigException) and error.options:
        message += f" (available: {', '.join(error.options)})"
    if cause is not None and isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        message = message.rstrip(".") + ": " + str(cause).strip().splitlines()[0]
    return message


def job_overrides(overrides: list[str], multirun: bool) -> list[list[str]]:
    """The overrides of every job the command line starts (one list for a single run), the sweeper's
    `hydra.sweeper.params` from presets included, as Hydra's basic sweeper expands them."""
    parser = OverridesParser.create()
    every = parser.parse_overrides(overrides)
    parsed = [o for o in every if not o.get_key_element().lstrip("+~").startswith("hydra")]
    # The first job's values, to read the sweep settings of presets (hydra.mode, hydra.sweeper.params).
    first = [
        f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}"
        if o.is_sweep_override() and o.is_discrete_sweep() else o.input_line
        for o in every
    ]
    hydra_cfg = compose(config_name=CONFIG_NAME, overrides=first, return_hydra_config=True).hydra
    if not (multirun or hydra_cfg.mode == "MULTIRUN"):
        return [[o.input_line for o in parsed]]
    params = hydra_cfg.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params else {}
    from_presets = [f"{k}={v}" for k, v in params.items()]
    every = parser.parse_overrides(from_presets) + parsed
    return BasicSweeper.split_arguments(every, max_batch_size=None)[0]


def check_command_line(argv: list[str]) -> None:
    """Exit with one line and status 2 if any job of this command line has a config that cannot work."""
    args, _ = get_args_parser().parse_known_args(without_preset_plus(argv))
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.config_dir:
        return  # Hydra answers these itself
    GlobalHydra.instance().clear()
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            for job in job_overrides(args.overrides, args.multirun):
                validate(compose(config_name=CONFIG_NAME, overrides=job))
    except (ConfigError, HydraException, OmegaConfBaseException) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {one_line(e, args.overrides)}", file=sys.stderr)
        sys.exit(2)
    finally:
        GlobalHydra.instance().clear()
