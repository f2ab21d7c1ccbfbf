"""The cluster's view of a sweep's jobs, for the dry run: which are queued or running on SLURM, and how the others
left the queue.

hydra/launcher=slurm (submitit) keeps one folder per submitted job under the sweep's directory,
`.submitit/<job id>/`, with the job's pickled call (whose first argument is the job's overrides). The newest
submission of each job of the command is looked up in `squeue`, and, for a job no longer queued, in `sacct`
where the cluster keeps accounting. Nothing is shown where there is no `.submitit/` or no `squeue`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

SUBMITIT_DIR = ".submitit"
QUERY_TIMEOUT_S = 30
_JOB_ID = re.compile(r"^(\d+)(?:_(\d+))?$")


@dataclass
class ClusterView:
    notes: dict[int, str] = field(default_factory=dict)  # job number -> `SLURM job 12_3: running on node7`
    counts: dict[str, int] = field(default_factory=dict)  # `running`, `queued`, ... -> how many jobs
    problem: Optional[str] = None  # why the cluster could not be asked

    def note(self, number: int) -> str:
        return f"; {self.notes[number]}" if number in self.notes else ""

    def lines(self) -> list[str]:
        if self.problem:
            return [f"SLURM: {self.problem}"]
        if not self.counts:
            return []
        return ["SLURM: " + ", ".join(f"{n} {state}" for state, n in self.counts.items())]


def _id_key(job_id: str) -> tuple[int, int]:
    match = _JOB_ID.match(job_id)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (-1, -1)


def submitted_jobs(sweep_dir: Path) -> dict[tuple[str, ...], str]:
    """{a job's overrides: the id of its newest SLURM submission} from the sweep's `.submitit/` folders."""
    folder = Path(sweep_dir) / SUBMITIT_DIR
    if not folder.is_dir():
        return {}
    pickles = sorted(folder.glob("*/*_submitted.pkl"), key=lambda p: _id_key(p.parent.name))
    if not pickles:
        return {}
    try:
        from submitit.core.utils import DelayedSubmission
    except ImportError:
        return {}
    found: dict[tuple[str, ...], str] = {}
    for path in pickles:  # oldest first: a later submission of the same job replaces an earlier one
        try:
            overrides = DelayedSubmission.load(path).args[0]
        except Exception:  # written by another version, or cut short: that submission is not shown
            continue
        found[tuple(overrides)] = path.parent.name
    return found


def _query(argv: list[str]) -> Optional[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=QUERY_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def queued(job_ids: list[str]) -> Optional[dict[str, tuple[str, str]]]:
    """{job id: (state, node or pending reason)} of those still in `squeue`, array tasks one by one; None if
    squeue could not be asked."""
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    out = _query(["squeue", "-h", "-r", "-o", "%i|%T|%R", "-j", ",".join(arrays)])
    if out is None:
        return None
    states = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def accounted(job_ids: list[str]) -> dict[str, str]:
    """{job id: final state} from `sacct`, where the cluster keeps accounting (empty where it does not)."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    arrays = sorted({job_id.split("_")[0] for job_id in job_ids})
    out = _query(["sacct", "-n", "-X", "-P", "-o", "JobID,State", "-j", ",".join(arrays)])
    states = {}
    for line in (out or "").splitlines():
        parts = line.strip().split("|")
        if len(parts) == 2:
            states[parts[0]] = parts[1].split()[0]  # `CANCELLED by 0` -> CANCELLED
    return states


def cluster_view(plan) -> ClusterView:
    """The SLURM state of each job of `plan` (a sweep's CommandPlan) submitted from its directory before."""
    view = ClusterView()
    if not plan.multirun or plan.base_dir is None:
        return view
    submitted = submitted_jobs(plan.base_dir)
    numbers = {number: submitted[tuple(job.overrides)] for number, job in enumerate(plan.jobs)
               if tuple(job.overrides) in submitted}
    if not numbers:
        return view
    if shutil.which("squeue") is None:
        view.problem = f"{len(numbers)} jobs were submitted from {plan.base_dir}, and squeue is not found here"
        return view
    in_queue = queued(list(numbers.values()))
    if in_queue is None:
        view.problem = "squeue did not answer; the jobs' states are not known"
        return view
    left = accounted([job_id for job_id in numbers.values() if job_id not in in_queue])
    for number, job_id in numbers.items():
        if job_id in in_queue:
            state, where = in_queue[job_id]
            kind = {"RUNNING": "running", "PENDING": "queued"}.get(state, state.lower())
            detail = f" on {where}" if state == "RUNNING" else f" ({where.strip('()')})" if where else ""
            view.notes[number] = f"SLURM job {job_id}: {kind}{detail}"
        else:
            kind = left.get(job_id, "left the queue").lower()
            view.notes[number] = f"SLURM job {job_id}: {kind}"
        view.counts[kind] = view.counts.get(kind, 0) + 1
    return view
