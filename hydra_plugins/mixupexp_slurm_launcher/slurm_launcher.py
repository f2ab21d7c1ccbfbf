"""The launcher of `hydra/launcher=slurm` (conf/hydra/launcher/slurm.yaml names it): Hydra's submitit SLURM
launcher, submitting exactly as it does, but waiting for the jobs with mixupexp/runs/slurm_jobs.py.

submitit waits for a job's result file, or for `sacct` to say the job ended: on a cluster without accounting a
job cancelled with scancel (or lost with its node) writes no result and the sweep would wait for ever; with
accounting, the sweep would stop at the first such job with a traceback. Here a job that has left the queue
without a result ends its wait as `lost`, the other jobs are waited for, and the end of the sweep names the run
and the command that resumes it, as for any run that did not finish.

Hydra imports every module of the `hydra_plugins` namespace at start-up: without the launchers extra there is
nothing to define here, and nothing is imported that would slow a single run down.
"""

from typing import Sequence

try:
    from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher as _SubmititSlurmLauncher
except ImportError:  # the launchers extra is not installed: hydra/launcher=slurm cannot be composed either
    _SubmititSlurmLauncher = None

if _SubmititSlurmLauncher is not None:
    from hydra.core.utils import JobReturn

    class SlurmLauncher(_SubmititSlurmLauncher):
        def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
            from mixupexp.runs.slurm_jobs import gather, submit

            jobs = submit(self, job_overrides, initial_job_idx)
            return gather(jobs, job_overrides)
