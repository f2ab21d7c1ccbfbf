"""Check a command line before Hydra starts any job, and plan it: every job of a sweep is composed and validated,
its run directory named (identity.run_name), a key that no job uses refused, and each data set found once.

A typo in one value of a 100-job sweep should cost one line and a second, not the 57 jobs before it. Errors are
printed as one line (`error: ...`) and exit with status 2; HYDRA_FULL_ERROR=1 shows the traceback instead. The
plan (`CommandPlan`) then serves the dry run (plan.py), the duplicate-jobs line and the Ctrl-C resume command
(train.py) and the account of every job at the end of a sweep (callbacks.py).
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra import compose

# Hydra has no public API for these two: its own command-line parser (so that flags are read exactly as
# `python -m mixupexp.train` reads them) and the basic sweeper's expansion of sweep overrides into jobs.
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException, MissingConfigException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from mixupexp.config.compose import CONFIG_NAME, composing
from mixupexp.config.hydra_internals import args_parser, expand_sweep
from mixupexp.config.options import ignored_by_option, ignored_keys
from mixupexp.config.presets import without_preset_plus
from mixupexp.config.schema import ConfigError
from mixupexp.config.suggest import did_you_mean
from mixupexp.data.datasets import Available, DataError, check_available, check_batch_size
from mixupexp.records.identity import flatten, plain_config, run_name
from mixupexp.runs.sweeps import FIXED, FixedSweep, Tools, sweep_of
from mixupexp.training.validate import validate


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


HYDRA_DIRECTORIES = ("hydra.run.dir", "hydra.sweep.dir")


def check_override_spelling(overrides: list[str]) -> None:
    """Raise ConfigError, naming the override and the fix, for what Hydra's grammar rejects with a message that
    names neither (a list split by the shell at a space, an unquoted ~) or accepts wrongly (a quoted ~ in an
    output directory, which Hydra does not expand: it would create a folder named ~ in the current one)."""
    for position, override in enumerate(overrides):
        key, sep, value = override.partition("=")
        if not sep:
            continue
        following = overrides[position + 1] if position + 1 < len(overrides) else ""
        if value.endswith(",") and following and "=" not in following:
            raise ConfigError(f"{override} {following}: the shell split the values at the space; write them without "
                              f"spaces, {key}={value}{following}")
        if value.startswith("~"):
            raise ConfigError(f"{override}: Hydra's override grammar does not read an unquoted ~; write the path out, "
                              f"{key}={os.path.expanduser(value)}")
        unquoted = value.strip("'\"")
        if key.lstrip("+") in HYDRA_DIRECTORIES and unquoted.startswith("~"):
            raise ConfigError(f"{override}: Hydra does not expand ~ in {key.lstrip('+')} (it would create a folder "
                              f"named ~ here); write {key}={os.path.expanduser(unquoted)}")


@dataclass
class Job:
    overrides: list[str]
    cfg: DictConfig  # composed and validated, without the `hydra` node
    name: str  # its run directory's name (identity.run_name)
    run_dir: Optional[Path]  # where it trains; None where hydra's directory settings cannot be read in advance


@dataclass
class CommandPlan:
    """What a command line of `python -m mixupexp.train` will do: its jobs, their run directories, and the
    overrides that pin its directory (a sweep's default directory holds the time it started)."""

    argv: list[str]
    pinned: list[str]
    multirun: bool
    base_dir: Optional[Path]  # the sweep's directory, or the single run's
    jobs: list[Job] = field(default_factory=list)
    kind: FixedSweep = FIXED  # the sweep (runs/sweeps.py): fixed, sequential or tuning
    sweep: Optional[Any] = None  # its own plan: a sequential sweep's rounds, a tuning sweep's trials so far

    @property
    def distinct(self) -> list[Job]:
        """The first job of each run: jobs that repeat a run of the command (same identity and seed) share it."""
        seen, distinct = set(), []
        for job in self.jobs:
            key = job.run_dir or job.name
            if key not in seen:
                seen.add(key)
                distinct.append(job)
        return distinct

    def counts(self) -> str:
        jobs, runs = len(self.jobs), len(self.distinct)
        return f"{jobs} job{'s' * (jobs != 1)}, {runs} distinct run{'s' * (runs != 1)}"

    def resume_command(self) -> str:
        return " ".join(["python -m mixupexp.train", *map(shlex.quote, self.argv + self.pinned)])


def _resolved(node: DictConfig, key: str) -> Optional[str]:
    try:
        return str(OmegaConf.select(node, key, throw_on_resolution_failure=True))
    except OmegaConfBaseException:
        return None  # e.g. it names runtime values (hydra.job.num) that only a running job has


def job_overrides(overrides: list[str], multirun: bool) -> tuple[list[list[str]], DictConfig]:
    """The overrides of every job the command line starts (one list for a single run), the sweeper's
    `hydra.sweeper.params` from presets included, as Hydra's basic sweeper expands them (none for a tuning
    sweep, whose sampler chooses them); and the first job's config with its `hydra` node."""
    parser = OverridesParser.create()
    every = parser.parse_overrides(overrides)
    parsed = [o for o in every if not o.get_key_element().lstrip("+~").startswith("hydra")]
    # The first job's values, to read the sweep settings of presets (hydra.mode, hydra.sweeper.params).
    first = [
        f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}"
        if o.is_sweep_override() and o.is_discrete_sweep() else o.input_line
        for o in every if not (o.is_sweep_override() and not o.is_discrete_sweep())  # interval(): a tuner's
    ]
    first_cfg = compose(config_name=CONFIG_NAME, overrides=first, return_hydra_config=True)
    hydra_cfg = first_cfg.hydra
    # The composed node holds RunMode.MULTIRUN (an Enum), which never equals the string "MULTIRUN".
    if not (multirun or hydra_cfg.mode == RunMode.MULTIRUN):
        return [[o.input_line for o in parsed]], first_cfg
    if not sweep_of(hydra_cfg).expands_jobs:  # a tuning sweep's sampler chooses its jobs as it goes
        return [], first_cfg
    params = hydra_cfg.sweeper.get("params")
    params = OmegaConf.to_container(params, resolve=False) if params else {}
    from_presets = [f"{k}={v}" for k, v in params.items()]
    every = parser.parse_overrides(from_presets) + parsed
    return expand_sweep(every), first_cfg


def _given(argv: list[str], key: str) -> bool:
    return any(a.split("=", 1)[0].lstrip("+~") == key for a in argv)


def check_ignored_overrides(overrides: list[str], jobs: list[Job]) -> None:
    """A key set on the command line that no job uses (`model=preact_resnet18 model.hidden=512`) is a mistake."""
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.key_or_group.lstrip("+~")
        if "." not in key or key.startswith("hydra"):
            continue
        flats = [flatten(plain_config(job.cfg)) for job in jobs]
        if all(key in ignored_keys(flat) for flat in flats):
            owners = sorted({f"{option_key.removesuffix('.name')}={option}"
                             for (option_key, option), keys in ignored_by_option().items() if key in keys
                             for flat in flats if flat.get(option_key) == option})
            raise ConfigError(f"{key} has no effect with {' and '.join(owners)}; remove it, or choose an option "
                              "that uses it")


def check_data_once(jobs: list[Job], decode: bool = False) -> None:
    """Every data set the jobs use is there (or downloads) and fits in memory, and each job's batch is smaller
    than its training set; with `decode`, an image folder is decoded (and cached) here, so that an unreadable
    image, images of different sizes or images too small for the model stop the command before any job writes
    its directory."""
    from mixupexp.models.networks import check_image_size

    checked: dict[str, Available] = {}
    for job in jobs:
        data = OmegaConf.to_container(job.cfg.data, resolve=True)
        key = repr(sorted(data.items()))
        if key not in checked:
            checked[key] = check_available(job.cfg.data, decode)
        found = checked[key]
        check_batch_size(job.cfg.trainer.batch_size, found.train_images)
        if found.image_size is not None:
            check_image_size(job.cfg.model, found.image_size, f"the images of data={job.cfg.data.name}")


def flags_first(argv: list[str]) -> list[str]:
    """argv with Hydra's flags (and their values) before the overrides: Hydra's parser takes the overrides only
    after its flags (`augment=none,mixup --multirun seed=0,1` would be refused with its usage), and a user may
    write `--multirun` anywhere."""
    actions = {option: action for action in args_parser()._actions for option in action.option_strings}
    flags, overrides = [], []
    tokens = iter(argv)
    for token in tokens:
        action = actions.get(token.split("=", 1)[0]) if token.startswith("-") else None
        if action is None:
            overrides.append(token)
            continue
        flags.append(token)
        if "=" in token or action.nargs == 0:
            continue
        if action.nargs is None:  # a flag with one value: --cfg job, --config-name NAME
            value = next(tokens, None)
            if value is not None:
                flags.append(value)
        elif action.nargs == "?" and action.choices:  # --info [config]: takes the next word if it is a choice
            value = next(tokens, None)
            if value is not None:
                (flags if value in action.choices else overrides).append(value)
    return flags + overrides


def plan_command(argv: list[str], check_data: bool = True, decode: bool = False) -> Optional[CommandPlan]:
    """Compose and validate every job of the command line (and check its data, once per data config, decoding
    image folders where `decode`); None for the commands Hydra answers itself (--help). Raises ConfigError,
    DataError, HydraException or OmegaConfBaseException."""
    argv = flags_first(without_preset_plus(argv))
    args, _ = args_parser().parse_known_args(argv)
    if args.help or args.hydra_help or args.cfg or args.info or args.shell_completion or args.config_dir:
        return None
    check_override_spelling(args.overrides)
    with composing():
        job_lists, first = job_overrides(args.overrides, args.multirun)
        multirun = args.multirun or first.hydra.mode == RunMode.MULTIRUN
        kind = sweep_of(first.hydra, multirun)
        kind.check(args.overrides, first.hydra)
        dir_key = "sweep.dir" if multirun else "run.dir"
        base = _resolved(first.hydra, dir_key)
        pinned = []
        raw_dir = str(OmegaConf.to_container(first.hydra, resolve=False)[dir_key.split(".")[0]]["dir"])
        if base is not None and "${now:" in raw_dir and not _given(args.overrides, f"hydra.{dir_key}"):
            pinned.append(f"hydra.{dir_key}={base}")  # the timestamp, fixed: the same command finds it again
        plan = CommandPlan(list(argv), pinned, multirun, Path(base) if base else None, kind=kind)
        tools = Tools(_composed, lambda jobs: _check_jobs(args.overrides, [Job(o, cfg, run_name(cfg), None)
                                                                           for o, cfg in jobs], check_data, decode))
        by_name = OmegaConf.to_container(first.hydra.sweep, resolve=False)["subdir"] == "${mixupexp.run_name:}"
        for overrides in job_lists:
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
            validate(cfg)
            name = run_name(cfg)
            run_dir = plan.base_dir / name if multirun and by_name and plan.base_dir else None
            plan.jobs.append(Job(overrides, cfg, name, run_dir if multirun else plan.base_dir))
        if kind.expands_jobs:  # (a tuning sweep's are checked at its space's ends, by its plan)
            _check_jobs(args.overrides, plan.jobs, check_data, decode)
        plan.sweep = kind.plan(plan, args.overrides, first.hydra, tools)
        if plan.sweep is not None:  # its jobs: the runs of its rounds or trials (those so far, and the next)
            plan.jobs = [Job(*job) for job in plan.sweep.jobs]
        return plan


def _check_jobs(overrides: list[str], jobs: list[Job], check_data: bool, decode: bool) -> None:
    check_ignored_overrides(overrides, jobs)
    if check_data:
        check_data_once(jobs, decode)


def _composed(overrides: list[str]) -> DictConfig:
    cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
    validate(cfg)
    return cfg


def check_command_line(argv: list[str], decode: bool = False) -> Optional[CommandPlan]:
    """Exit with one line and status 2 if any job of this command line has a config that cannot work or data that
    are not there (with `decode`, that cannot be decoded); else return the command's plan (None for --help and the
    like)."""
    try:
        return plan_command(argv, decode=decode)
    except (ConfigError, DataError, HydraException, OmegaConfBaseException, AssertionError) as e:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        overrides = args_parser().parse_known_args(flags_first(without_preset_plus(argv)))[0].overrides
        message = _null_parent(overrides) if isinstance(e, AssertionError) else None
        print(f"error: {message or one_line(e, overrides)}", file=sys.stderr)
        sys.exit(2)


def _null_parent(overrides: list[str]) -> Optional[str]:
    """For OmegaConf's bare AssertionError on `+a.b.c=v` where a.b is null (an unchosen logger): what to do."""
    plain = [o for o in overrides if not o.startswith("+")]
    try:
        with composing():
            cfg = compose(config_name=CONFIG_NAME, overrides=plain)
    except Exception:
        return None
    for override in overrides:
        key = override.lstrip("+").split("=", 1)[0]
        parent = key.rpartition(".")[0]
        if override.startswith("+") and parent and OmegaConf.select(cfg, parent) is None:
            if parent.startswith("logger.") and parent.count(".") == 1:
                name = parent.split(".")[1]
                return f"{key} cannot be set: logger {name} is not chosen; add logger={name} (or logger=[csv,{name}])"
            return f"{key} cannot be set: {parent} is null in this config"
    return None
