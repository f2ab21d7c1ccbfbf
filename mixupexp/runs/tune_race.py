"""Racing in a tuning sweep (`hydra.sweeper.racing=true`): each trial gets seeds only while they can still
change which configuration wins.

The rule is SMAC's intensification (Hutter et al. 2011) and irace's racing (Lopez-Ibanez et al. 2016), on the
paired seeds every trial shares. The *incumbent* is the configuration in the lead; its seeds are 0..m-1.

- A batch of new trials (trials_per_batch of them) races the incumbent of the batch's start. Each trial starts
  on the incumbent's first `min_seeds` seeds; in each later round it gets twice as many, up to the incumbent's m.
- After every round a trial is compared with the incumbent on the seeds both have, paired by seed, on
  validation accuracy: d_i = val_acc(trial, seed i) - val_acc(incumbent, seed i). It is *dropped* when the upper
  end of the one-sided `DROP_LEVEL` t bound on the mean difference lies below -tolerance:
      mean(d) + t_{DROP_LEVEL, df} * s / sqrt(n) < -tolerance,
  where s is the pooled sd of the paired differences over every comparison so far (each comparison's
  differences about its own mean, df = the sum of n - 1 over the comparisons), so that a trial can be dropped
  after one seed once other trials have shown how much seeds scatter. Without df there is no drop.
- A trial that reaches all m seeds without being dropped takes the lead when its mean difference is > 0 (of the
  batch's trials that do, the largest). A trial that does not is *tied* (or at the cap, where m = max_seeds);
  the incumbent then gets one more seed when the next batch starts, up to `max_seeds`: where challengers keep
  tying it, it is judged on more seeds.
- A batch without an incumbent (the first, or one after the incumbent's run failed) runs `min_seeds` seeds of
  each trial; the best mean leads and the others are compared with it as above.

Dropping is an optimisation decision, not a claim: its bound is not corrected for the many looks, and a trial
wrongly dropped costs only a configuration the sampler may propose again. The study's claim is the fresh-seed
confirmation (runs/tune_sweep.py), as without racing.

`replay(...)` is the whole rule, a plain function of the finished runs' values: the sweep calls it after every
launch to learn which runs come next, a study started again calls it to find where it stood, and the report
calls it to recompute every stop from the runs on disk.

References: F. Hutter, H. Hoos, K. Leyton-Brown (2011), "Sequential model-based optimization for general
algorithm configuration", LION 5 (the intensification); M. Lopez-Ibanez et al. (2016), "The irace package:
iterated racing for automatic algorithm configuration", Operations Research Perspectives 3: 43-58.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Optional

DROP_LEVEL = 0.95
"""The one-sided level of the bound that drops a trial; docs/tuning.md measures it with the rest of the rule."""

MIN_SEEDS = 1
MAX_SEEDS = 3
"""Simulated (`python -m mixupexp.runs.tune_simulation --studies 200`, docs/tuning.md: 16 trials of TPE against
16 x 3 seeds, paired-difference sd 0.4 / 0.8 / 1.4 points): from 1 seed up to 3, racing matched the fixed design's
regret (0.19 / 0.27 / 0.37 points against 0.19 / 0.26 / 0.38) with 37 / 32 / 29 % fewer runs, and given the fixed
design's runs it reached a lower regret (0.10 / 0.17 / 0.30). Up to 5 seeds cut the regret a little more at the
same trials (0.18 / 0.23 / 0.35) but saved only 25 / 15 / 9 % of the runs; starting on 2 seeds saved 4 % or
fewer, and cost runs at sd 1.4."""
TOLERANCE = 0.5
"""Points of validation accuracy: a trial is dropped only when it is shown worse than the incumbent by more."""

INCUMBENT = "incumbent"
FAILED = "failed"


def dropped(round_: int) -> str:
    return f"dropped in round {round_}"


def overtaken(by: int) -> str:
    return f"overtaken by trial {by}"


def tied(seeds: int) -> str:
    return f"tied on {seeds} seed{'s' * (seeds != 1)}"


CAP = "cap"


@dataclass(frozen=True)
class RaceSettings:
    min_seeds: int = MIN_SEEDS
    max_seeds: int = MAX_SEEDS
    tolerance: float = TOLERANCE


@dataclass
class Entry:
    """One trial in the race."""

    number: int
    batch: int
    seeds: int = 0  # it runs seeds 0..seeds-1 (those scheduled so far)
    against: Optional[int] = None  # the incumbent it is compared with; None for the one that led its batch
    rounds: int = 0
    stop: Optional[str] = None  # why it stopped; None while it races
    mean_difference: float = math.nan  # its paired mean difference at its last look
    upper: float = math.nan  # the drop bound at its last look

    @property
    def dropped(self) -> bool:
        return self.stop is not None and self.stop.startswith("dropped")


@dataclass
class Race:
    """Where a race stands: each trial's seeds and stop, the incumbent, and the runs it needs next."""

    entries: dict[int, Entry] = field(default_factory=dict)
    incumbent: Optional[int] = None
    incumbent_seeds: int = 0
    open: bool = False  # a batch is still racing: some scheduled run has no value yet
    history: list[tuple[int, Optional[int], float]] = field(default_factory=list)  # (runs, incumbent, its mean)

    def scheduled(self) -> dict[int, int]:
        """How many seeds each trial is given so far (seeds 0..n-1)."""
        return {number: entry.seeds for number, entry in self.entries.items()}

    def runs(self) -> int:
        return sum(entry.seeds for entry in self.entries.values())


def replay(batches: Sequence[Sequence[int]], values: Mapping[int, Mapping[int, float]],
           failed: Collection[int] = (), settings: RaceSettings = RaceSettings()) -> Race:
    """The race of `batches` (the trials' numbers, batch by batch, in the order they were asked), given the
    validation accuracy of every finished run (values[trial][seed]) and the failed runs ((trial, seed) pairs).
    Stops at the first round whose runs have not all ended (`open`, with their seeds in `scheduled()`)."""
    race = Race()
    raise_incumbent = False
    for index, batch in enumerate(batches):
        if race.incumbent is not None and raise_incumbent and race.incumbent_seeds < settings.max_seeds:
            race.incumbent_seeds += 1
            race.entries[race.incumbent].seeds = race.incumbent_seeds
        entries = [race.entries.setdefault(number, Entry(number, index)) for number in batch]
        settled, raise_incumbent = _race_batch(race, entries, values, set(failed), settings)
        if not settled:
            race.open = True
            return race
        lead = race.entries.get(race.incumbent) if race.incumbent is not None else None
        race.history.append((race.runs(), race.incumbent,
                             _mean(values, race.incumbent, race.incumbent_seeds) if lead else math.nan))
    return race


def _race_batch(race: Race, entries: list[Entry], values, failed: set[tuple[int, int]],
                settings: RaceSettings) -> tuple[bool, bool]:
    """Race one batch; (settled, whether the incumbent gets a seed more for the next batch)."""
    if race.incumbent is None:
        for entry in entries:
            entry.seeds, entry.rounds = settings.min_seeds, 1
        if not _finished(values, failed, [(e.number, e.seeds) for e in entries]):
            return False, False
        alive = [e for e in entries if not _fail(e, failed)]
        if not alive:
            return True, False
        lead = max(alive, key=lambda e: (_mean(values, e.number, e.seeds), -e.number))
        lead.stop = INCUMBENT
        race.incumbent, race.incumbent_seeds = lead.number, lead.seeds
        live, round_ = [e for e in alive if e is not lead], 1
    else:
        live, round_ = entries, 1
    incumbent = race.entries[race.incumbent]
    for entry in live:
        entry.against = incumbent.number
    finished: list[Entry] = []
    while live:
        for entry in live:
            entry.seeds = min(settings.min_seeds * 2 ** (round_ - 1), race.incumbent_seeds)
            entry.rounds = round_
        if not _finished(values, failed, [(incumbent.number, race.incumbent_seeds),
                                          *((e.number, e.seeds) for e in live)]):
            return False, False
        if _fail(incumbent, failed):  # its extra seed failed: the next batch opens without an incumbent
            for entry in live:
                entry.stop = f"incumbent trial {incumbent.number} failed"
            race.incumbent = None
            return True, False
        live = [e for e in live if not _fail(e, failed)]
        sd, df = pooled_sd(race, values)
        for entry in live:
            differences = _differences(values, entry)
            entry.mean_difference = sum(differences) / len(differences)
            entry.upper = drop_bound(entry.mean_difference, sd, df, len(differences))
            if entry.upper < -settings.tolerance:
                entry.stop = dropped(round_)
            elif entry.seeds >= race.incumbent_seeds:
                finished.append(entry)
        live = [e for e in live if e.stop is None and e not in finished]
        round_ += 1
    better = [e for e in finished if e.mean_difference > 0]
    for entry in finished:
        if entry not in better:
            entry.stop = CAP if entry.seeds >= settings.max_seeds else tied(entry.seeds)
    if better:
        lead = max(better, key=lambda e: (e.mean_difference, -e.number))
        for entry in [incumbent, *better]:
            entry.stop = overtaken(lead.number)
        lead.stop = INCUMBENT
        race.incumbent = lead.number
        return True, False
    return True, bool(finished)  # ties only: the incumbent is judged on a seed more


def drop_bound(mean_difference: float, sd: float, df: int, n: int) -> float:
    """The upper end of the one-sided DROP_LEVEL t bound on a mean of n paired differences, the pooled sd s
    with df degrees of freedom: mean + t_{DROP_LEVEL, df} s / sqrt(n); +inf without df."""
    if df < 1 or not math.isfinite(sd):
        return math.inf
    from scipy.stats import t

    return mean_difference + float(t.ppf(DROP_LEVEL, df)) * sd / math.sqrt(n)


def pooled_sd(race: Race, values) -> tuple[float, int]:
    """(s, df): the sd of a paired difference pooled over every comparison in the race so far, each one's
    differences about its own mean (a comparison of n seeds adds n - 1 degrees of freedom)."""
    squares, df = 0.0, 0
    for entry in race.entries.values():
        if entry.against is None or entry.seeds < 2:
            continue
        try:
            differences = _differences(values, entry)
        except KeyError:  # a run of it not finished yet
            continue
        mean = sum(differences) / len(differences)
        squares += sum((d - mean) ** 2 for d in differences)
        df += len(differences) - 1
    return (math.sqrt(squares / df), df) if df else (math.nan, 0)


def _differences(values, entry: Entry) -> list[float]:
    return [values[entry.number][seed] - values[entry.against][seed] for seed in range(entry.seeds)]


def _mean(values, number: int, seeds: int) -> float:
    return sum(values[number][seed] for seed in range(seeds)) / seeds


def _finished(values, failed: set[tuple[int, int]], needs: list[tuple[int, int]]) -> bool:
    """Whether every run of (trial, its first n seeds) has ended: with a value, or failed."""
    return all(seed in values.get(number, {}) or (number, seed) in failed
               for number, seeds in needs for seed in range(seeds))


def _fail(entry: Entry, failed: set[tuple[int, int]]) -> bool:
    """Whether a run of the trial's seeds so far failed (then it stops, failed)."""
    if any((entry.number, seed) in failed for seed in range(entry.seeds)):
        entry.stop = FAILED
        return True
    return False
