"""The design of a sequential sweep (`hydra/sweeper=sequential`): its settings, its arms and families, and what
its runs on disk say.

An *arm* is one configuration of the command line's sweep, the seed apart: the cartesian product of the sweep
overrides, jobs that train the same run (same identity, e.g. `augment=none` at every α) counted once. Each arm
that is not a baseline is compared with its baseline, the `augment=none` arm with the same other settings, as
the summary matches them; a baseline and the arms compared with it form a *family*. As in the summary, every
comparison of the sweep shares one error budget: each is judged at alpha / K, K the comparisons of the whole
sweep (analysis/sequential.py). The seed of a run is the sweeper's to choose: round 0 runs seeds 0..min_seeds-1 of
every arm, each later round the next seeds of the arms still open and of their baseline.

Everything here is a function of the composed configurations and of the result.json files in the sweep's
directory, so the sweeper, the dry run, the check of a command line and the end-of-sweep account agree on the
rounds, and a sweep started again takes the decisions it took before.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mixupexp.analysis import sequential as seq
from mixupexp.config.options import ignored_keys, option
from mixupexp.config.schema import ConfigError
from mixupexp.records.checkpoint import RESULT
from mixupexp.records.identity import (
    SEED,
    flatten,
    identity,
    identity_hash,
    plain_config,
    run_name,
)
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.sequential_settings import Settings

SWEEPER_TARGET = "hydra_plugins.mixupexp_sequential_sweeper.sequential_sweeper.SequentialSweeper"
SWEEPER_CHOICE = "hydra/sweeper=sequential"
DECISIONS_FILE = "sequential.json"
BASELINE = "none"
BASELINE_KEY = "augment.name"
RUN_NAME_SUBDIR = "${mixupexp.run_name:}"


def is_sequential(hydra_cfg: Any) -> bool:
    """Whether a composed `hydra` node selects the sequential sweeper."""
    sweeper = hydra_cfg.get("sweeper") if hydra_cfg is not None else None
    return sweeper is not None and sweeper.get("_target_") == SWEEPER_TARGET


def check_command(overrides: list[str], hydra_cfg: DictConfig, preset_params: dict[str, Any]) -> Settings:
    """What a sequential sweep needs of its command line, before anything runs: settings that can work, no seed
    (the sweeper chooses the seeds) and run directories named by the run (it finds each seed's run by its
    name). Returns the settings; ConfigError with one line naming the key and the fix otherwise."""
    settings = Settings.of(hydra_cfg.sweeper)
    settings.check()
    given = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") == SEED]
    if given or SEED in preset_params:
        what = given[0] if given else f"{SEED}={preset_params[SEED]} (from the preset's sweep)"
        fix = ("remove it" if given else
               "use a preset without a seed sweep, e.g. experiment=seed_study_sequential for experiment=seed_study")
        raise ConfigError(f"{what} cannot be given with {SWEEPER_CHOICE}: the sweeper chooses the seeds itself "
                          f"({seq.KEY_MIN_SEEDS}, {seq.KEY_MAX_SEEDS}, {seq.KEY_SEEDS_PER_ROUND}); {fix}")
    subdir = OmegaConf.to_container(hydra_cfg.sweep, resolve=False).get("subdir")
    if subdir != RUN_NAME_SUBDIR:
        raise ConfigError(f"hydra.sweep.subdir={subdir} cannot be used with {SWEEPER_CHOICE}: it finds each seed's "
                          f"run by its name; leave hydra.sweep.subdir at its default, {RUN_NAME_SUBDIR}")
    return settings


# ---- arms and families -------------------------------------------------------------------------------------


@dataclass
class Arm:
    """One configuration of the sweep, the seed apart."""

    key: str  # the identity hash: arms that train the same runs are one arm
    label: str  # as typed: `augment=mixup augment.alpha=0.1`
    overrides: list[str]  # its jobs' overrides, without the seed
    config: dict  # its resolved config (the seed as composed)
    is_baseline: bool
    first_seed: int = 0  # the seed of run 0: the rounds count an arm's runs 0, 1, ... and run seeds first_seed + i

    def run_name(self, index: int) -> str:
        return run_name({**self.config, SEED: self.first_seed + index})

    def job_config(self, cfg: DictConfig, index: int) -> DictConfig:
        """A copy of the composed config `cfg` of this arm, for its index-th run."""
        job = copy.deepcopy(cfg)
        job[SEED] = self.first_seed + index
        return job

    def job_overrides(self, index: int) -> list[str]:
        return [*self.overrides, f"{SEED}={self.first_seed + index}"]


@dataclass
class Family:
    """A baseline and the arms compared with it: K = len(members), each comparison judged at alpha / K."""

    baseline: Arm
    members: list[Arm]


_IGNORED_BY_BASELINE = frozenset(option("augment", BASELINE).ignores) | {BASELINE_KEY}


def _shared(ident: dict[str, Any]) -> dict[str, Any]:
    """What a configuration must share with its baseline: its identity but for the keys augment=none ignores."""
    return {k: v for k, v in ident.items() if k not in _IGNORED_BY_BASELINE}


def _swept_keys(job_overrides: list[list[str]]) -> list[str]:
    """The keys whose value differs between the configurations, in the command line's order."""
    values: dict[str, set[str]] = {}
    for overrides in job_overrides:
        for override in overrides:
            key, _, value = override.partition("=")
            values.setdefault(key.lstrip("+~"), set()).add(value)
    return [key for key, seen in values.items() if len(seen) > 1]


def _label(overrides: list[str], config: dict, swept: list[str]) -> str:
    flat = flatten(config)
    unused = ignored_keys(flat)
    parts = {}
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if key in swept and key not in unused:
            parts[key] = value
    if "augment" not in parts:
        parts = {"augment": str(flat.get(BASELINE_KEY)), **parts}
    return " ".join(f"{k}={v}" for k, v in parts.items())


@dataclass
class Design:
    """The arms of a sequential sweep, their families, and where their runs are."""

    settings: Settings
    sweep_dir: Path
    arms: list[Arm]
    families: list[Family]
    configs: dict[str, DictConfig] = field(default_factory=dict, repr=False)  # composed, by arm key
    # The configurations ever compared in the sweep's directory (runs/sequential_family.py), this command's too.
    family_size: int = 0

    @classmethod
    def build(cls, settings: Settings, sweep_dir: Path, jobs: list[tuple[list[str], DictConfig]]) -> "Design":
        """From the sweep's configurations, (overrides without the seed, composed config) each. ConfigError when
        the sweep has no baseline (augment=none) or a configuration has none with its other settings."""
        swept = _swept_keys([overrides for overrides, _ in jobs])
        arms: dict[str, Arm] = {}
        configs: dict[str, DictConfig] = {}
        for overrides, cfg in jobs:
            config = plain_config(cfg)
            ident = identity(config)
            key = identity_hash(ident)
            if key not in arms:
                is_baseline = flatten(config).get(BASELINE_KEY) == BASELINE
                arms[key] = Arm(key, _label(overrides, config, swept), list(overrides), config, is_baseline,
                                settings.first_seed)
                configs[key] = cfg
        baselines = [arm for arm in arms.values() if arm.is_baseline]
        if not baselines:
            raise ConfigError(f"{SWEEPER_CHOICE} compares every configuration with its baseline, augment=none, and "
                              "this sweep has none; add it to the sweep, e.g. augment=none,mixup")
        families = {arm.key: Family(arm, []) for arm in baselines}
        by_settings = {json.dumps(_shared(identity(arm.config)), sort_keys=True, default=str): arm for arm in baselines}
        for arm in arms.values():
            if arm.is_baseline:
                continue
            baseline = by_settings.get(json.dumps(_shared(identity(arm.config)), sort_keys=True, default=str))
            if baseline is None:
                raise ConfigError(f"{arm.label} has no baseline in this sweep (augment=none with its other "
                                  f"settings), which {SWEEPER_CHOICE} compares it with; add augment=none to the sweep")
            families[baseline.key].members.append(arm)
        return cls(settings, Path(sweep_dir), list(arms.values()), list(families.values()), configs)

    @property
    def compared(self) -> int:
        return sum(len(family.members) for family in self.families)

    @property
    def k(self) -> int:
        """K of alpha / K: every configuration compared in the directory, never fewer than this command's."""
        return max(self.compared, self.family_size)

    def max_runs(self) -> int:
        return seq.max_runs(len(self.arms) - 1, self.settings.max_seeds)

    def run_dir(self, arm: Arm, index: int) -> Path:
        """The directory of an arm's run `index` (its seed: settings.seed(index))."""
        return self.sweep_dir / arm.run_name(index)

    # ---- the runs on disk ----------------------------------------------------------------------------------

    def read_runs(self, count_failed: bool | set[tuple[str, int]] = True) -> "Runs":
        """What the sweep's directory holds for every arm and run index up to max_seeds (by (arm key, index): the
        rounds count an arm's runs 0, 1, ...; run i has seed settings.seed(i)).

        A finished run gives its test accuracy. A failed run counts as run, with no accuracy (its pair drops
        out), where `count_failed` is True or names it (the runs the sweeper launched in this process); other
        failed runs are left out, so that the next round tries them again, as a command run again does.
        Unfinished runs are left out."""
        runs = Runs()
        for arm in self.arms:
            for index in range(self.settings.max_seeds):
                run_dir = self.run_dir(arm, index)
                try:
                    result = json.loads((run_dir / RESULT).read_text())
                except (OSError, json.JSONDecodeError):
                    if run_dir.exists():
                        runs.present.add((arm.key, index))
                    continue
                runs.present.add((arm.key, index))
                status = result.get("status")
                if status == RunStatus.OK:
                    runs.accuracy[(arm.key, index)] = float(result["test_acc"])
                    if result.get("test_images"):
                        runs.test_images[(arm.key, index)] = int(result["test_images"])
                elif status in FAILURES:
                    runs.failed.add((arm.key, index))
                    if count_failed is True or (count_failed and (arm.key, index) in count_failed):
                        runs.accuracy[(arm.key, index)] = math.nan
        return runs

    # ---- the rounds ----------------------------------------------------------------------------------------

    def decisions(self, runs: "Runs") -> dict[str, seq.Decision]:
        """Each compared arm's Decision (by arm key), replayed from the runs, baseline by baseline. Every
        comparison of the sweep shares one error budget, as in the summary: each is judged at alpha / K, K every
        configuration ever compared in the sweep's directory (`k`)."""
        decisions: dict[str, seq.Decision] = {}
        for family in self.families:
            if not family.members:
                continue
            arms = [family.baseline, *family.members]
            results = {arm.key: runs.of(arm) for arm in arms}
            alpha = self.settings.alpha * len(family.members) / self.k
            decisions.update(seq.decide_sweep(results, family.baseline.key,
                                              **{**self.settings.decide_kwargs(), "alpha": alpha},
                                              resolution=resolution(runs.test_images_of(arms))))
        return decisions

    def next_round(self, runs: "Runs", decisions: dict[str, seq.Decision]) -> dict[str, list[int]]:
        """{arm key: run indices} to run next, over every family; {} when every comparison is settled."""
        planned: dict[str, list[int]] = {}
        for family in self.families:
            members = [arm.key for arm in family.members]
            if not members:
                continue
            ran = {arm.key: set(runs.of(arm)) for arm in [family.baseline, *family.members]}
            for key, indices in seq.next_seeds(members, family.baseline.key, decisions, ran,
                                               **self.settings.schedule()).items():
                planned[key] = sorted(set(planned.get(key, [])) | set(indices))
        return {arm.key: planned[arm.key] for arm in self.arms if arm.key in planned}  # the command line's order

    def round_of(self, planned: dict[str, list[int]]) -> int:
        """The index of the round the planned run indices belong to (the round whose bound covers the largest)."""
        largest = max((max(indices) for indices in planned.values() if indices), default=-1)
        return next((r for r, bound in enumerate(self.settings.rounds) if largest < bound), len(self.settings.rounds))

    def arm(self, key: str) -> Arm:
        return next(arm for arm in self.arms if arm.key == key)

    def jobs(self, runs: "Runs", planned: dict[str, list[int]]) -> list[tuple[Arm, int]]:
        """Every run of the sweep so far (a directory on disk) and of the next round, arm by arm: (arm, run index)."""
        jobs = []
        for arm in self.arms:
            indices = {index for key, index in runs.present if key == arm.key} | set(planned.get(arm.key, []))
            jobs += [(arm, index) for index in sorted(indices)]
        return jobs

    def seeds_used(self, runs: "Runs", arm: Arm) -> int:
        """Seeds run for an arm (finished or failed)."""
        return len(runs.of(arm))

    def runs_used(self, runs: "Runs") -> int:
        return sum(self.seeds_used(runs, arm) for arm in self.arms)

    def plan_lines(self, runs: "Runs") -> list[str]:
        """What the dry run says of the rounds: the design, the next round, and the bound (`runs` as a command
        started now would read them: failed runs to try again)."""
        decisions = self.decisions(runs)
        planned = self.next_round(runs, decisions)
        k = len(self.arms) - 1
        lines = [f"sequential sweep ({SWEEPER_CHOICE}): {len(self.arms)} configurations, {self.compared} compared "
                 f"with a baseline in {len(self.families)} famil{'y' if len(self.families) == 1 else 'ies'}; "
                 f"{self.settings.text()}"]
        if planned:
            count = sum(len(seeds) for seeds in planned.values())
            lines.append(f"next: round {self.round_of(planned)}, {count} run{'s' * (count != 1)} ("
                         + "; ".join(f"{self.arm(key).label}: seeds {_seed_range(self._seeds(seeds))}"
                                     for key, seeds in planned.items()) + ")")
        else:
            lines.append("every comparison is settled: no round left to run")
        settled = [f"{self.arm(key).label}: {decision.text}" for key, decision in decisions.items() if decision.settled]
        if settled:
            lines.append("settled so far: " + "; ".join(settled))
        lines.append(f"at most (K + 1) · max_seeds = ({k} + 1) · {self.settings.max_seeds} = {self.max_runs()} runs "
                     f"in all; {self.runs_used(runs)} run{'s' * (self.runs_used(runs) != 1)} so far")
        return lines


    def _seeds(self, indices: list[int]) -> list[int]:
        return [self.settings.seed(i) for i in indices]


SCHEDULE_KEYS = ("min_seeds", "seeds_per_round", "max_seeds", "alpha")


def planned_schedule(settings: Settings, k: int) -> dict[str, Any]:
    """What a planned design's boundaries are made for: the rounds, the level and K, the comparisons."""
    return {**{key: getattr(settings, key) for key in SCHEDULE_KEYS}, "k": k}


def check_schedule(design: Design) -> None:
    """A planned sweep started again must keep the schedule its boundaries were made for: ConfigError with one
    line naming the first key that changed, where the sweep's sequential.json records a round that ran with
    another one (the anytime design holds under any change, and is never refused)."""
    if design.settings.design != seq.PLANNED:
        return
    try:
        record = json.loads((design.sweep_dir / DECISIONS_FILE).read_text())
        before = planned_schedule(Settings.of(record["settings"]), int(record["k"]))
    except (OSError, ValueError, KeyError, TypeError):
        return  # a new sweep, or one that has not recorded a round
    if not record.get("runs"):
        return  # nothing has been looked at yet
    now = planned_schedule(design.settings, design.k)
    for key, value in now.items():
        if before[key] != value:
            what = (f"this sweep compares {value} configurations with a baseline and its planned boundaries are for "
                    f"the {before[key]} it started with" if key == "k" else
                    f"hydra.sweeper.{key}={value}: this sweep's planned boundaries are for {key}={before[key]}")
            raise ConfigError(f"{what} ({DECISIONS_FILE}); keep its schedule, or add {seq.KEY_DESIGN}={seq.ANYTIME}, "
                              "which holds under any change of plan")


def _seed_range(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


@dataclass
class Runs:
    """The runs of a sweep's directory: accuracy (NaN: failed and counted) by (arm key, run index); every run
    directory present; and the failed runs. A run index i is seed settings.seed(i) (first_seed + i)."""

    accuracy: dict[tuple[str, int], float] = field(default_factory=dict)
    present: set[tuple[str, int]] = field(default_factory=set)
    failed: set[tuple[str, int]] = field(default_factory=set)
    test_images: dict[tuple[str, int], int] = field(default_factory=dict)  # as recorded by finished runs

    def of(self, arm: Arm) -> dict[int, float]:
        return {index: acc for (key, index), acc in sorted(self.accuracy.items()) if key == arm.key}

    def test_images_of(self, arms: list[Arm]) -> list[int]:
        keys = {arm.key for arm in arms}
        return [n for (key, _), n in self.test_images.items() if key in keys]


def resolution(test_images) -> float | None:
    """100 / N points, the step of accuracies measured on N test images, where the runs recorded one N; else None
    (a float tolerance then tells a difference without spread). The summary uses the same rule."""
    sizes = {int(n) for n in test_images if n == n and n}
    return 100.0 / sizes.pop() if len(sizes) == 1 else None
