"""Racing against the fixed design of a tuning sweep, on simulated landscapes, without training.

A landscape is a smooth true validation accuracy over mixup's alpha and ratio (`truth`), peaked inside the space;
a run's value is truth + a seed effect (shared by every configuration at that seed, sd `SEED_SD`) + run noise, at a
paired-difference sd of 0.4, 0.8 or 1.4 points (the noise's sd is that / sqrt 2). Each simulated study asks its
trials from Optuna's sampler exactly as the sweep does (`tune_sweep.make_sampler`: TPE seeded per trial) and tells
it what the sweep tells it: the fixed design, the mean of seeds 0..k-1 of every trial; racing, the stops of
`tune_race.replay` (the rule the sweep runs), pruned trials with their partial mean as intermediate value. Only the
runs are drawn instead of trained, and files are not written.

Reported per design: the regret of the configuration the study chose (the best mean without racing, the incumbent
with racing), truth(best point) - truth(chosen), in points, and the runs the search took. Racing is run twice:
with the fixed design's number of trials (the same trials, fewer runs), and with its budget of runs (trials asked
until the runs spent reach the fixed design's n_trials x k).

`python -m mixupexp.runs.tune_simulation` prints the table of docs/tuning.md.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from mixupexp.runs.tune_design import TuneSettings
from mixupexp.runs.tune_race import RaceSettings, replay
from mixupexp.runs.tune_space import read_space

SPACE = ["augment=mixup", "augment.alpha=interval(0.05,2.0)", "augment.ratio=interval(0.05,1.0)"]
PEAK = (0.35, 0.35)
SEED_SD = 0.5
SDS = (0.4, 0.8, 1.4)


def truth(alpha, ratio):
    """The true validation accuracy (points): 76 at alpha = ratio = 0.35, about 5 points lower at alpha's ends,
    2 at ratio = 1; smooth, one peak."""
    return 76.0 - 1.5 * np.log(alpha / PEAK[0]) ** 2 - 4.0 * (ratio - PEAK[1]) ** 2


BEST = float(truth(*PEAK))


@dataclass(frozen=True)
class Design:
    name: str
    racing: bool
    race: RaceSettings = RaceSettings()
    budget: bool = False  # racing: trials until the fixed design's runs are spent


class Runs:
    """The runs of one simulated study: seed effects and run noise drawn once per (trial, seed)."""

    def __init__(self, rng: np.random.Generator, sd: float):
        self.rng, self.noise = rng, sd / math.sqrt(2)
        self.seed_effect = rng.normal(0, SEED_SD, 64)

    def value(self, params: dict, seed: int) -> float:
        return float(truth(params["augment.alpha"], params["augment.ratio"]) + self.seed_effect[seed]
                     + self.rng.normal(0, self.noise))


def study(design: Design, sd: float, n_trials: int, seeds_per_trial: int, sampler_seed: int,
          rng_seed: int) -> tuple[float, int, int]:
    """One simulated study: (regret of the chosen configuration, runs of the search, trials)."""
    import optuna
    from optuna.trial import TrialState

    from mixupexp.runs.tune_sweep import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = read_space(SPACE)
    settings = TuneSettings(n_trials=n_trials, seeds_per_trial=seeds_per_trial, sampler_seed=sampler_seed)
    distributions = {p.key: p.distribution() for p in space.parameters}
    runs = Runs(np.random.default_rng(rng_seed), sd)
    study_ = optuna.create_study(direction="maximize")
    params: dict[int, dict] = {}

    def ask():
        study_.sampler = make_sampler(settings, space, len(study_.trials))
        trial = study_.ask(distributions)
        params[trial.number] = dict(trial.params)
        return trial

    if not design.racing:
        means = {}
        for _ in range(n_trials):
            trial = ask()
            means[trial.number] = float(np.mean([runs.value(trial.params, s) for s in range(seeds_per_trial)]))
            study_.tell(trial.number, means[trial.number])
        chosen = max(means, key=lambda n: (means[n], -n))
        return BEST - float(truth(params[chosen]["augment.alpha"], params[chosen]["augment.ratio"])), \
            n_trials * seeds_per_trial, n_trials
    budget = n_trials * seeds_per_trial
    values: dict[int, dict[int, float]] = {}
    told: set[int] = set()
    asked: dict[int, object] = {}
    batches: list[list[int]] = []
    while True:
        race = replay(batches, values, (), design.race)
        for number, entry in race.entries.items():
            if entry.stop is None or number in told:
                continue
            mean = float(np.mean([values[number][s] for s in range(entry.seeds)]))
            if entry.dropped:
                asked[number].report(mean, step=entry.seeds)
                study_.tell(number, state=TrialState.PRUNED)
            else:
                study_.tell(number, mean)
            told.add(number)
        if race.open:
            for number, seeds in race.scheduled().items():
                for seed in range(seeds):
                    if seed not in values.setdefault(number, {}):
                        values[number][seed] = runs.value(params[number], seed)
            continue
        if (race.runs() >= budget) if design.budget else (len(batches) >= n_trials):
            break
        trial = ask()
        asked[trial.number] = trial
        batches.append([trial.number])
    chosen = race.incumbent
    return BEST - float(truth(params[chosen]["augment.alpha"], params[chosen]["augment.ratio"])), race.runs(), \
        len(batches)


DESIGNS = (
    Design("fixed, 3 seeds a trial", racing=False),
    Design("racing 1-3 seeds, same trials", racing=True, race=RaceSettings(1, 3, 0.5)),
    Design("racing 1-5 seeds, same trials", racing=True, race=RaceSettings(1, 5, 0.5)),
    Design("racing 2-5 seeds, same trials", racing=True, race=RaceSettings(2, 5, 0.5)),
    Design("racing 1-3 seeds, same runs", racing=True, race=RaceSettings(1, 3, 0.5), budget=True),
    Design("racing 1-5 seeds, same runs", racing=True, race=RaceSettings(1, 5, 0.5), budget=True),
    Design("racing 2-5 seeds, same runs", racing=True, race=RaceSettings(2, 5, 0.5), budget=True),
)


def table(studies: int, n_trials: int, seeds_per_trial: int, designs=DESIGNS, sds=SDS,
          tolerance: Optional[float] = None) -> list[dict]:
    """Every design at every sd: mean regret (its SE), the share within 0.5 points of the best, mean runs and
    trials. The same studies (landscape draws and sampler seeds) for every design."""
    rows = []
    for sd in sds:
        for design in designs:
            if tolerance is not None and design.racing:
                design = Design(design.name, True, RaceSettings(design.race.min_seeds, design.race.max_seeds,
                                                                tolerance), design.budget)
            results = np.array([study(design, sd, n_trials, seeds_per_trial, sampler_seed=i, rng_seed=10_000 + i)
                                for i in range(studies)])
            regret, spent, trials = results.T
            rows.append({"sd": sd, "design": design.name, "regret": regret.mean(),
                         "regret_se": regret.std(ddof=1) / math.sqrt(studies), "within_half": (regret < 0.5).mean(),
                         "runs": spent.mean(), "trials": trials.mean()})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=100, help="simulated studies per line")
    parser.add_argument("--n-trials", type=int, default=16, help="the fixed design's trials")
    parser.add_argument("--seeds-per-trial", type=int, default=3, help="the fixed design's seeds a trial")
    parser.add_argument("--tolerance", type=float, default=None, help="racing's tune_tolerance (default 0.5)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    print(f"$ python -m mixupexp.runs.tune_simulation {shlex.join(sys.argv[1:] if argv is None else argv)}")
    print(f"{args.studies} studies a line; the fixed design: {args.n_trials} trials x {args.seeds_per_trial} seeds = "
          f"{args.n_trials * args.seeds_per_trial} runs; racing: tolerance "
          f"{0.5 if args.tolerance is None else args.tolerance} points; TPE; seed effect sd {SEED_SD}")
    print("| paired-difference sd | design | regret (points) | within 0.5 of the best | runs | trials |")
    print("| --- | --- | --- | --- | --- | --- |")
    for row in table(args.studies, args.n_trials, args.seeds_per_trial, tolerance=args.tolerance):
        print(f"| {row['sd']:.1f} | {row['design']} | {row['regret']:.2f} ± {row['regret_se']:.2f} | "
              f"{100 * row['within_half']:.0f} % | {row['runs']:.1f} | {row['trials']:.1f} |", flush=True)
    print(f"({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
