"""Submitting a sweep's jobs to SLURM as Hydra's submitit launcher does, and waiting for them so that a job that
leaves the queue without a result (scancel, a lost node) ends as `lost` instead of holding the sweep for ever.

A job is done when its result file exists or `sacct` says it ended. A job that `squeue` no longer lists, and that
has no result LOST_AFTER_S later (a shared file system may show a file late), is lost: its JobReturn says so, the
sweep goes on, and the account at its end names the run (runs/callbacks.py). A job requeued by a preemption or
at its time limit stays in the queue and is waited for.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

from mixupexp.records.status import JobOutcome
from mixupexp.runs.cluster import queued

log = logging.getLogger("mixupexp")
POLL_S = 2.0
LOST_AFTER_S = 30.0


def submit(launcher, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list:
    """Submit the jobs as one job array, with the launcher's settings, exactly as Hydra's submitit launcher does;
    return submitit's jobs."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    params = dict(launcher.params)
    init_keys = {"submitit_folder", "max_num_timeout"}
    executor = submitit.AutoExecutor(cluster=launcher._EXECUTOR, folder=params["submitit_folder"],
                                     **{f"{launcher._EXECUTOR}_max_num_timeout": params["max_num_timeout"]}
                                     if "max_num_timeout" in params else {})
    queue_keys = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{key if key in queue_keys else f"{launcher._EXECUTOR}_{key}": value
                                  for key, value in params.items() if key not in init_keys})
    log.info("Submitit '%s' sweep output dir : %s", launcher._EXECUTOR, launcher.config.hydra.sweep.dir)
    calls = []
    for number, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
        calls.append((list(overrides), "hydra.sweep.dir", number, f"job_id_for_{number}", Singleton.get_state()))
    return executor.map_array(launcher, *zip(*calls))


def gather(jobs: list, job_overrides: Sequence[Sequence[str]]) -> list[JobReturn]:
    """Each job's JobReturn, in order, once every job is done or lost."""
    returns: dict[int, JobReturn] = {}
    pending = dict(enumerate(jobs))
    gone_since: dict[int, float] = {}
    while pending:
        for index, job in list(pending.items()):
            if job.done():
                returns[index] = _returned(job, job_overrides[index])
                del pending[index]
        if not pending:
            break
        in_queue = queued([job.job_id for job in pending.values()])
        now = time.monotonic()
        for index, job in list(pending.items()):
            if in_queue is None or job.job_id in in_queue:  # squeue did not answer: keep waiting
                gone_since.pop(index, None)
                continue
            if now - gone_since.setdefault(index, now) >= LOST_AFTER_S and not job.done():
                returns[index] = lost(job, job_overrides[index], "it left the queue without a result")
                del pending[index]
        time.sleep(POLL_S)
    return [returns[index] for index in range(len(jobs))]


def _returned(job, overrides: Sequence[str]) -> JobReturn:
    from submitit.core.utils import UncompletedJobError

    try:
        return job.results()[0]
    except UncompletedJobError as e:  # sacct says it ended without a result: cancelled, a node failure
        return lost(job, overrides, str(e).strip().splitlines()[0])


def lost(job: Any, overrides: Sequence[str], why: str) -> JobReturn:
    log.error("SLURM job %s (%s) did not finish: %s; the account below names its run", job.job_id,
              " ".join(filter_overrides(overrides)), why)
    return JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED, _return_value=JobOutcome.LOST)
