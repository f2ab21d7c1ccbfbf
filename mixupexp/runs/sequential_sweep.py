"""The rounds of a sequential sweep (`hydra/sweeper=sequential`), run through the configured launcher.

Round 0 runs min_seeds seeds of every configuration; after each round the comparisons with the baseline are
judged (analysis/sequential.py: by a test made for looking after every round), the decisions
written to `<sweep dir>/sequential.json` and logged one line per configuration, and the next round runs more
seeds only for the configurations still open and their baseline, up to max_seeds. Each job is an ordinary run
of `python -m mixupexp.train`: its directory is named by the run, so a sweep started again finds every finished
run, and its decisions replay from them.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from omegaconf import DictConfig, OmegaConf

from mixupexp.analysis import sequential as seq
from mixupexp.config.hydra_internals import expand_sweep
from mixupexp.config.schema import ConfigError
from mixupexp.records.files import write_json
from mixupexp.records.identity import SEED
from mixupexp.runs import sequential_family
from mixupexp.runs.sequential_design import DECISIONS_FILE, Design, Runs, check_schedule
from mixupexp.runs.sequential_settings import Settings, interval_name

log = logging.getLogger("mixupexp")


def configurations(params: dict[str, Any], arguments: list[str], config_loader) -> list[list[str]]:
    """The overrides of every configuration: the cartesian product of the preset's and the command line's sweep
    overrides, as Hydra's basic sweeper expands them, with no seed among them."""
    parser = OverridesParser.create(config_loader=config_loader)
    overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments))
    seeds = [o.input_line for o in overrides if o.get_key_element().lstrip("+~") == SEED]
    if seeds:
        raise ConfigError(f"{seeds[0]} cannot be given with hydra/sweeper=sequential: the sweeper chooses the seeds")
    return expand_sweep(overrides)


def sweep_in_rounds(settings: Settings, params: dict[str, Any], arguments: list[str], *, config: DictConfig,
                    config_loader, launcher) -> list[Sequence[JobReturn]]:
    """Run the sweep round by round through `launcher`; return every round's job returns."""
    settings.check()
    sweep_dir = Path(str(config.hydra.sweep.dir))
    jobs = [(overrides, config_loader.load_sweep_config(config, overrides))
            for overrides in configurations(params, arguments, config_loader)]
    design = Design.build(settings, sweep_dir, jobs)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(config, sweep_dir / "multirun.yaml")  # as the basic sweeper does: the summary reads it
    shrunk = sequential_family.join(design, write=True)  # before any run: K is fixed before the data are seen
    log.info("sequential sweep of %d configurations (%d compared with a baseline): %s; at most %d runs",
             len(design.arms), design.compared, settings.text(), design.max_runs())
    if shrunk:
        log.warning("%s", shrunk)
    return run_rounds(design, launcher)[0]


def run_rounds(design: Design, launcher, job_index: int = 0,
               extra_overrides: Sequence[str] = ()) -> tuple[list[Sequence[JobReturn]], int]:
    """The rounds of `design` through `launcher`, each job with `extra_overrides` too (a tuning sweep's
    confirmation puts its runs in a folder of its own); returns every round's job returns and the next job
    index."""
    check_schedule(design)
    returns: list[Sequence[JobReturn]] = []
    launched: set[tuple[str, int]] = set()
    batch: list[tuple[str, int]] = []
    while True:
        runs = design.read_runs(count_failed=launched)
        decisions = design.decisions(runs)
        planned = design.next_round(runs, decisions)
        record(design, runs, decisions, planned)
        if batch and all(pair in runs.failed for pair in batch):
            # A broken configuration or data: more rounds would only fail the same way, up to max_seeds.
            log.error("every run of the last round failed (%d); no further round is started", len(batch))
            break
        batch = [(key, index) for key, indices in planned.items() for index in indices]  # run indices, not seeds
        if not batch:
            break
        stuck = [pair for pair in batch if pair in launched]
        if stuck:  # launched in this process and neither finished nor failed: a clash, a refusal, an interruption
            log.error("round %d cannot go on: %d of its runs did not finish (%s); the account below names them",
                      design.round_of(planned), len(stuck),
                      ", ".join(design.arm(key).run_name(index) for key, index in stuck))
            break
        round_index = design.round_of(planned)
        log.info("round %d: %d runs (%s)", round_index, len(batch), "; ".join(
            f"{design.arm(key).label} seed{'s' * (len(indices) != 1)} "
            f"{', '.join(str(design.settings.seed(i)) for i in indices)}"
            for key, indices in planned.items()))
        overrides = [[*design.arm(key).job_overrides(index), *extra_overrides] for key, index in batch]
        results = launcher.launch(overrides, initial_job_idx=job_index)
        for result in results:
            _ = result.return_value  # raises the job's exception, as the basic sweeper does
        job_index += len(overrides)
        launched |= set(batch)
        returns.append(results)
    return returns, job_index


def decisions_record(design: Design, runs: Runs, decisions: dict[str, seq.Decision],
                     planned: dict[str, list[int]]) -> dict:
    """sequential.json: the settings, and per family and configuration the decision after the last round."""
    families = []
    for family in design.families:
        members = []
        for arm in family.members:
            decision = decisions.get(arm.key)
            if decision is None:
                continue
            members.append({
                "configuration": arm.label, "run_key": arm.key, "verdict": decision.verdict, "stopped": decision.text,
                "n": decision.n, "seeds": design.seeds_used(runs, arm), "mean_delta": _finite(decision.mean),
                "interval_low": _finite(decision.low), "interval_high": _finite(decision.high),
                "log_e_value": _finite(decision.log_e), "round": decision.round,
                "settled_round": decision.settled_round,
                "testable": decision.testable,
                "next_seeds": [design.settings.seed(i) for i in planned.get(arm.key, [])],
            })
        families.append({"baseline": family.baseline.label, "baseline_seeds": design.seeds_used(runs, family.baseline),
                         "compared": len(family.members), "configurations": members})
    return {
        "settings": {**design.settings.decide_kwargs(), "e_value": design.settings.test().text},
        # One error budget over every comparison of the sweep (Bonferroni): each at alpha / k.
        "k": design.k, "level": design.settings.alpha / max(design.k, 1),
        "rounds": design.settings.rounds,
        "next_round": design.round_of(planned) if planned else None,
        "runs": design.runs_used(runs),
        "fixed_design_runs": design.max_runs(),
        "families": families,
    }


def _finite(value: float):
    return value if math.isfinite(value) else None  # JSON has no infinity: null is an unbounded side


def decision_line(label: str, decision: seq.Decision, seeds: int, interval_kind: str = "anytime-valid") -> str:
    """`augment=mixup augment.alpha=0.1: better after 7 seeds (Δ = +1.97, anytime-valid [+0.98, +2.96] points)`."""
    if decision.verdict == seq.OPEN:
        state = f"open after {seeds} seeds"
    elif decision.verdict == seq.NOT_SETTLED:
        state = decision.text
    else:
        state = f"{decision.text} after {seeds} seeds"
    if decision.n == 0:
        return f"{label}: {state} (no pairs yet)"
    interval = f"[{_signed(decision.low)}, {_signed(decision.high)}]"
    return f"{label}: {state} (n = {decision.n}, Δ = {_signed(decision.mean)}, {interval_kind} {interval} points)"


def _signed(value: float) -> str:
    if math.isinf(value):
        return "-∞" if value < 0 else "+∞"
    return f"{value:+.2f}"


def record(design: Design, runs: Runs, decisions: dict[str, seq.Decision], planned: dict[str, list[int]]) -> None:
    """Write sequential.json (atomically) and log one line per configuration."""
    write_json(design.sweep_dir / DECISIONS_FILE, decisions_record(design, runs, decisions, planned))
    judged = max((decision.round for decision in decisions.values()), default=-1)
    if judged < 0:
        return  # nothing judged yet
    log.info("after round %d, %d runs so far:", judged, design.runs_used(runs))
    for family in design.families:
        for arm in family.members:
            if arm.key in decisions:
                log.info("%s", decision_line(arm.label, decisions[arm.key], design.seeds_used(runs, arm),
                                             interval_name(design.settings.design)))
