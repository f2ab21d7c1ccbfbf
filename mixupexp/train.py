"""`python -m mixupexp.train`: one training run (or, with --multirun, a sweep of them); training/run.py trains."""

from __future__ import annotations

import sys

if __name__ == "__main__":  # before the imports below, which take seconds: Ctrl-C during them is one line too
    def _interrupted(kind, value, traceback):
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
        else:
            sys.__excepthook__(kind, value, traceback)

    sys.excepthook = _interrupted

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.config.completion import answer_completion  # noqa: E402

answer_completion(sys.argv[1:])  # a TAB in the shell: answered from the config alone (it exits), without torch

import logging
import os
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from mixupexp.config.compose import CONFIG_NAME, CONFIG_PATH, VERSION_BASE
from mixupexp.config.help import help_text, wants_help
from mixupexp.config.presets import without_preset_plus
from mixupexp.config.schema import ConfigError
from mixupexp.data.datasets import DataError
from mixupexp.records.interrupt import exit_status, handle_sigterm
from mixupexp.records.job_log import job_logging
from mixupexp.records.lock import RunLocked, invocation_id
from mixupexp.records.status import JobOutcome
from mixupexp.runs.command_plan import check_command_line, flags_first
from mixupexp.runs.directories import check_directories
from mixupexp.training.run import record_failure, train

log = logging.getLogger("mixupexp")


def _one_line(error: BaseException) -> str:
    lines = [line.strip() for line in f"{error}".splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


@hydra.main(version_base=VERSION_BASE, config_path=CONFIG_PATH, config_name=CONFIG_NAME)
def run_job(cfg: DictConfig) -> str:
    """One Hydra job; returns how it ended: `ok` (trained, resumed or found finished), `duplicate` (another job
    of this command is training the same run), `clash`, `refused`, or the failure status. In a multirun a failed
    job is recorded in its result.json and the sweep goes on; the end of the sweep accounts for every job and
    exits non-zero if any did not finish."""
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    in_sweep = HydraConfig.get().mode == RunMode.MULTIRUN
    handle_sigterm()  # also in a launcher's worker process
    try:
        with job_logging(out_dir.name):
            train(cfg, out_dir)
        return JobOutcome.OK
    except RunLocked as e:
        if e.same_invocation:  # a job of this sweep that repeats another's run: that job trains it
            log.info("%s: the same run as another job of this sweep, which trains it", out_dir)
            return JobOutcome.DUPLICATE
        message = f"{e}; run the command again once it has finished"
        if not in_sweep:
            print(f"error: {message}", file=sys.stderr)
            sys.exit(1)
        log.error("%s", message)
        return JobOutcome.CLASH
    except ConfigError as e:  # bad input, or a directory holding another config's run: never overwrite it
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        print(f"error: {e}", file=sys.stderr)
        if not in_sweep:
            sys.exit(2)
        return JobOutcome.REFUSED
    except Exception as e:
        status = record_failure(out_dir, cfg, e)
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        if in_sweep:  # each job's log says why it stopped; the sweep's last line lists them all
            log.error("run %s: %s", status, _one_line(e))
            return status
        print(f"error: {_one_line(e)}", file=sys.stderr)
        sys.exit(2 if isinstance(e, DataError) else 1)


def main() -> None:
    """`python -m mixupexp.train`: check the command line (every job, the data once, and what the run
    directories hold), then hand it to Hydra.

    A sweep's default directory holds the time it started; it is fixed on the command line Hydra sees, so that
    the command printed on Ctrl-C (or SIGTERM) runs the same jobs into the same directories."""
    handle_sigterm()
    plan = None
    try:
        sys.argv[1:] = flags_first(without_preset_plus(sys.argv[1:]))
        if wants_help(sys.argv[1:]):
            print(help_text([arg for arg in sys.argv[1:] if "=" in arg and not arg.startswith("-")]))
            return
        plan = check_command_line(sys.argv[1:], decode=True)  # the data decoded before any directory
        invocation_id()
        if plan is not None:
            check_directories(plan)
            sys.argv += plan.pinned
            if plan.multirun and len(plan.distinct) < len(plan.jobs):
                repeats = len(plan.jobs) - len(plan.distinct)
                print(f"{plan.counts()}: the other {repeats} repeat{'s' * (repeats == 1)} a run of this sweep (same "
                      f"identity and seed) and {'is' if repeats == 1 else 'are'} not trained again", file=sys.stderr)
        run_job()
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (records/interrupt.py), at any moment of the command
        status = exit_status(stop)
        resume = plan.resume_command() if plan is not None else "the same command"
        print(f"interrupted; resume with: {resume}", file=sys.stderr)
        sys.exit(status)


if __name__ == "__main__":
    # Run the copy imported by name, not this __main__ module: launchers such as submitit pickle the job
    # function, and a function of __main__ would be pickled by value, with every module it references.
    from mixupexp.train import main as imported_main

    imported_main()
