"""Hydra callbacks at the end of a multirun: the summary of the sweep's directory, then an account of every job.

Both run in the process that started the sweep, whichever launcher ran the jobs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mixupexp.records.checkpoint import RESULT, config_differences
from mixupexp.records.files import remove_stale_temp_files
from mixupexp.records.identity import plain_config
from mixupexp.records.lock import invocation_id, live_holder
from mixupexp.records.result import UnreadableResult, read_result
from mixupexp.records.status import FAILURES, RunStatus
from mixupexp.runs.command_plan import CommandPlan, Job, plan_command
from mixupexp.runs.sweeps import report_of_directory

# mixupexp.summarize is imported inside the callbacks: Hydra loads this module for every run, single runs
# included, and the summary's statistics and plotting libraries take seconds to import.

log = logging.getLogger("mixupexp")
SHOWN_ERROR_CHARS = 160


class SummarizeSweep(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        """The temporary files that a kill during a write of the sweep's own files left (sequential.json,
        tune.json, summary.csv, ..., in the sweep's directory and a confirmation's): no job of this command writes
        there yet, and each run removes its own under its lock."""
        sweep_dir = Path(config.hydra.sweep.dir)
        for directory in (sweep_dir, *sorted(sweep_dir.glob("confirm-trial*"))):
            for stale in remove_stale_temp_files(directory):
                log.info("removed %s, left by a write that was interrupted", stale)

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from mixupexp.analysis.collect import SummaryError, left_out_lines
        from mixupexp.runs.report import caveat_lines, verdict_lines, write_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        own = report_of_directory(sweep_dir)
        if own is not None:  # a tuning study: trials on validation, the chosen one confirmed on the test set
            for line in own.report(sweep_dir, plots=True):
                print(line)
            log.info("%s report written to %s (%s)", own.name, sweep_dir / "summary.md", own.report_files)
            return
        try:
            summary = write_summary([sweep_dir], sweep_dir, require_finished=True)
        except SummaryError as e:
            log.error("no summary written: %s", e)
            return
        log.info("summary of %d configurations written to %s (and summary.md, plots)", len(summary),
                 sweep_dir / "summary.csv")
        for line in left_out_lines(summary.attrs.get("left_out", [])):
            log.warning("%s", line)
        for line in verdict_lines(summary) + caveat_lines(summary.attrs.get("fixed", {})):
            print(line)
        from mixupexp.tracking.loggers import log_sweep_summary

        log_sweep_summary(config, sweep_dir)


def job_problem(job: Job) -> Optional[str]:
    """Why the run of `job` did not finish, or None if it did (its own finished result is in its directory)."""
    holder = live_holder(job.run_dir)
    if holder is not None and holder.invocation != invocation_id():
        return f"clash: being trained by {holder.describe()}"
    try:
        result = read_result(job.run_dir / RESULT)
    except UnreadableResult as e:
        return f"unreadable {RESULT} ({e.problem})"
    if result is None:
        return "did not run"
    if config_differences(plain_config(job.cfg), result.get("config", {})):
        return "refused: its directory holds a run of another config"
    status = result.get("status")
    if status == RunStatus.OK:
        return None
    if status in FAILURES:
        return _failure(result)
    return "interrupted"


def _failure(result: dict) -> str:
    return f"{result.get('status')}: {result.get('error', '')}"[:SHOWN_ERROR_CHARS]


def _grouped(problems: dict[str, list[str]]) -> tuple[int, str]:
    """(how many runs, `problem (a, b); other problem (c)`): each distinct problem once with the runs it hit."""
    count = sum(len(names) for names in problems.values())
    return count, "; ".join(f"{problem} ({', '.join(names)})" for problem, names in problems.items())


def unfinished_line(plan: CommandPlan, problems: dict[str, list[str]]) -> str:
    """`2 of 12 distinct runs (18 jobs) did not finish: failed: X (a, b); clash: ... (c); resume with: ...`: one
    line, each distinct problem once with the runs it hit."""
    count, parts = _grouped(problems)
    return (f"{count} of {len(plan.distinct)} distinct runs ({len(plan.jobs)} jobs) in {plan.base_dir} did not "
            f"finish: {parts}; resume with: {plan.resume_command()}")


def _this_command_plan() -> Optional[CommandPlan]:
    """The plan of the command this process runs (`python -m mixupexp.train` has checked it before the sweep, and
    fixed its sweep directory on the command line), or None for another entry point."""
    try:
        return plan_command(sys.argv[1:], check_data=False)
    except Exception:  # not a mixupexp.train command line: the results found tell instead
        return None


class ReportFailures(Callback):
    """After the sweep (and its summary): account for every job of the command; if any run did not end with its
    own finished result (failed, interrupted, clashed with another process, refused), say which in one line and
    exit non-zero."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        plan = _this_command_plan()
        if plan is None or any(job.run_dir is None for job in plan.jobs):
            return self._report_results(Path(config.hydra.sweep.dir))
        problems: dict[str, list[str]] = {}
        for job in plan.distinct:
            problem = job_problem(job)
            if problem is not None:
                problems.setdefault(problem, []).append(job.name)
        if problems:
            print(f"error: {unfinished_line(plan, problems)}", file=sys.stderr)
            sys.exit(1)
        log.info("%s, every run finished", plan.counts())

    @staticmethod
    def _report_results(sweep_dir: Path) -> None:
        """Without a plan of the jobs (another entry point, or run directories hydra names at run time only):
        the runs found in the sweep's directory that did not finish."""
        from mixupexp.analysis.collect import find_results

        problems: dict[str, list[str]] = {}
        paths = find_results([sweep_dir])
        for path in paths:
            try:
                result = read_result(path)
            except UnreadableResult as e:
                problems.setdefault(f"unreadable {RESULT} ({e.problem})", []).append(
                    str(path.parent.relative_to(sweep_dir)))
                continue
            if result is not None and result.get("status") != RunStatus.OK:
                problems.setdefault(_failure(result), []).append(str(path.parent.relative_to(sweep_dir)))
        if problems:
            count, parts = _grouped(problems)
            print(f"error: {count} of {len(paths)} runs in {sweep_dir} did not finish: {parts}", file=sys.stderr)
            sys.exit(1)
