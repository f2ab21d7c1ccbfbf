"""Hydra callbacks that stop or break one job of a sweep, for tests of a sweep between rounds.

Added on the command line (`+hydra.callbacks.NAME._target_=tests.sweep_callbacks.CLASS`), they do nothing unless
their environment variable names a seed, so that the very same command, run again without it, resumes the sweep.
They act in the process that runs the job: the basic launcher's, the one the sweep itself runs in.
"""

import os

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

INTERRUPT_ENV = "INTERRUPT_AT_SEED"
INTERRUPT_TARGET = "tests.sweep_callbacks.InterruptAtSeed"
FAIL_ENV = "FAIL_AT_SEED"  # a seed, or `all`
FAIL_RATIO_ENV = "FAIL_AT_RATIO"  # only runs with this augment.ratio, if set
FAIL_TARGET = "tests.sweep_callbacks.FailAtSeed"
FAILURE = "injected failure"


class InterruptAtSeed(Callback):
    """Ctrl-C at the start of the job with seed INTERRUPT_AT_SEED."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if os.environ.get(INTERRUPT_ENV) is not None and int(config.seed) == int(os.environ[INTERRUPT_ENV]):
            raise KeyboardInterrupt


class FailAtSeed(Callback):
    """The training of the job with seed FAIL_AT_SEED (and augment.ratio FAIL_AT_RATIO) raises, as a bug or a
    broken node would: the run records `failed` and the sweep goes on."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        import mixupexp.training.run as run

        self._saved = None
        seed, ratio = os.environ.get(FAIL_ENV), os.environ.get(FAIL_RATIO_ENV)
        if seed is None or (seed != "all" and int(config.seed) != int(seed)):
            return
        if ratio is not None and float(config.augment.ratio) != float(ratio):
            return

        def broken(*args, **kwargs):
            raise RuntimeError(FAILURE)

        self._saved, run._train = run._train, broken

    def on_job_end(self, config: DictConfig, **kwargs) -> None:
        import mixupexp.training.run as run

        if self._saved is not None:
            run._train, self._saved = self._saved, None


INTERRUPT_JOB_ENV = "INTERRUPT_AT_JOB"
INTERRUPT_JOB_TARGET = "tests.sweep_callbacks.InterruptAtJob"


class InterruptAtJob(Callback):
    """Ctrl-C at the start of the sweep's job number INTERRUPT_AT_JOB (hydra.job.num counts every job the
    sweeper launched, across its launches)."""

    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        from hydra.core.hydra_config import HydraConfig

        at = os.environ.get(INTERRUPT_JOB_ENV)
        if at is not None and HydraConfig.get().job.num == int(at):
            raise KeyboardInterrupt
