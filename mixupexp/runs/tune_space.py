"""The search space of a tuning sweep (`hydra/sweeper=tune`): Hydra's sweep overrides read as parameters.

As Hydra's own sweepers read them: `augment.alpha=interval(0.05,2.0)` is a continuous parameter,
`'augment.alpha=tag(log,interval(0.01,2.0))'` one on a log scale, `tag(int,interval(1,8))` an integer one,
`augment.ratio=choice(0.1,0.2,0.5)` (or `augment.ratio=0.1,0.2,0.5`) a categorical one and `range(1,5)` the integers
1..4 (Hydra's range leaves out its end, as Python's does). Every other override is the same for every trial.

Nothing here needs Optuna but `Parameter.distribution`, so the command line is checked without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep

from mixupexp.config.schema import ConfigError
from mixupexp.records.identity import SEED

SWEEPER_CHOICE = "hydra/sweeper=tune"
FLOAT, INT, CHOICE = "float", "int", "choice"


@dataclass(frozen=True)
class Parameter:
    """One searched key: an interval of floats or integers (low and high included), or a list of choices, each
    kept as typed on the command line so that a trial's override is exactly what a user would write."""

    key: str
    kind: str
    low: float = math.nan
    high: float = math.nan
    log: bool = False
    step: int = 1
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        if self.kind == CHOICE:
            return f"{self.key} in {{{', '.join(self.choices)}}}"
        scale = ", log scale" if self.log else ""
        return f"{self.key} in [{self.low:g}, {self.high:g}]{' integers' if self.kind == INT else ''}{scale}"

    def extremes(self) -> list[str]:
        """The values every trial's config is checked at before anything runs: the ends, or every choice."""
        if self.kind == CHOICE:
            return list(self.choices)
        return [value_text(self.low if self.kind == FLOAT else int(self.low)),
                value_text(self.high if self.kind == FLOAT else int(self.high))]

    def override(self, value: Any) -> str:
        return f"{self.key}={value_text(value)}"

    def distribution(self):
        """Optuna's distribution of this parameter."""
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

        if self.kind == CHOICE:
            return CategoricalDistribution(list(self.choices))
        if self.kind == INT:
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=1 if self.log else self.step)
        return FloatDistribution(self.low, self.high, log=self.log)

    def grid(self) -> list[Any]:
        """Every value, for the grid sampler: choices and integer ranges only."""
        if self.kind == CHOICE:
            return list(self.choices)
        if self.kind == INT and not self.log:
            return list(range(int(self.low), int(self.high) + 1, self.step))
        raise ConfigError(f"{self.key} is a continuous interval, which hydra.sweeper.sampler=grid cannot list; give "
                          f"its values, e.g. {self.key}=choice({self.low:g},{(self.low + self.high) / 2:g},"
                          f"{self.high:g}), or use sampler=tpe or random")


def value_text(value: Any) -> str:
    """A value as an override writes it: floats in their shortest exact form, so a run's config holds the value
    the sampler chose."""
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass
class Space:
    parameters: list[Parameter]
    fixed: list[str] = field(default_factory=list)  # the overrides shared by every trial, as typed

    def text(self) -> str:
        return "; ".join(p.text() for p in self.parameters)

    def record(self) -> list[dict[str, Any]]:
        """What the study stores, to tell a sweep started again with another space."""
        return [{"key": p.key, "kind": p.kind, "low": None if p.kind == CHOICE else p.low,
                 "high": None if p.kind == CHOICE else p.high, "log": p.log, "step": p.step,
                 "choices": list(p.choices)} for p in self.parameters]

    def trial_overrides(self, values: dict[str, Any]) -> list[str]:
        """A trial's overrides: the fixed ones, then each searched key with its value."""
        return [*self.fixed, *(p.override(values[p.key]) for p in self.parameters)]

    def corner_overrides(self) -> list[list[str]]:
        """Overrides that reach every end and every choice of every parameter (the others at their first):
        composing and checking each finds a value that cannot work before any trial runs."""
        first = {p.key: p.extremes()[0] for p in self.parameters}
        corners = [[*self.fixed, *(f"{key}={value}" for key, value in first.items())]]
        for p in self.parameters:
            for value in p.extremes()[1:]:
                corners.append([*self.fixed, *(f"{key}={value if key == p.key else first[key]}" for key in first)])
        return corners


def read_space(arguments: list[str], params: dict[str, Any] | None = None) -> Space:
    """The space of the sweep overrides among `arguments` (and a preset's hydra.sweeper.params); the hydra.*
    overrides are Hydra's. ConfigError, one line naming the override and the fix, for a space that cannot be
    searched."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    parameters, fixed = [], []
    for override in OverridesParser.create().parse_overrides(lines):
        key = override.get_key_element().lstrip("+~")
        if key == "hydra" or key.startswith(("hydra.", "hydra/")):  # Hydra's own: hydra/sweeper=tune, ...
            continue
        if key == SEED:
            raise ConfigError(f"{override.input_line} cannot be given with {SWEEPER_CHOICE}: every trial runs seeds "
                              "0..k-1 (k = hydra.sweeper.seeds_per_trial) and the answer is confirmed on fresh "
                              "seeds; remove it")
        if not override.is_sweep_override():
            fixed.append(override.input_line)
            continue
        parameters.append(_parameter(key, override))
    if not parameters:
        raise ConfigError(f"{SWEEPER_CHOICE} needs a space to search: give at least one key a range, e.g. "
                          "'augment.alpha=interval(0.05,2.0)' 'augment.ratio=choice(0.1,0.2,0.5)'")
    return Space(parameters, fixed)


def _parameter(key: str, override: Override) -> Parameter:
    value = override.value()
    line = override.input_line
    if isinstance(value, IntervalSweep):
        low, high = float(value.start), float(value.end)
        log, integer = "log" in value.tags, "int" in value.tags
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            raise ConfigError(f"{line}: the interval is empty or inverted; give its low end first and below its "
                              f"high end, e.g. {key}=interval({min(low, high):g},{max(low, high) or 1:g})"
                              if low != high else f"{line}: the interval is empty (its ends are equal); widen it, "
                              f"or fix the value with {key}={low:g}")
        if log and low <= 0:
            raise ConfigError(f"{line}: a log-scale interval needs a low end > 0; e.g. "
                              f"{key}=tag(log,interval({high / 100:g},{high:g}))")
        if integer:
            low, high = math.ceil(low), math.floor(high)
            if low >= high:
                raise ConfigError(f"{line}: the interval holds fewer than two integers; widen it")
            return Parameter(key, INT, low, high, log=log)
        return Parameter(key, FLOAT, low, high, log=log)
    if isinstance(value, RangeSweep):
        values = list(override.sweep_string_iterator())
        if not values:
            raise ConfigError(f"{line}: the range is empty (Hydra's range leaves out its end); e.g. "
                              f"{key}=range({value.start},{value.start + 3 * (value.step or 1)})")
        ints = all(isinstance(v, int) for v in (value.start, value.stop, value.step))
        if ints and not value.shuffle and value.step > 0:
            return Parameter(key, INT, int(values[0]), int(values[-1]), step=int(value.step))
        return Parameter(key, CHOICE, choices=tuple(values))
    if isinstance(value, ChoiceSweep):
        values = list(override.sweep_string_iterator())
        if len(set(values)) != len(values):
            raise ConfigError(f"{line}: a value is listed twice; list each once")
        return Parameter(key, CHOICE, choices=tuple(values))
    raise ConfigError(f"{line}: {SWEEPER_CHOICE} searches interval(), choice() and range() sweeps; write it as one")
