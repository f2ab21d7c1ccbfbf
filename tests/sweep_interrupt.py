"""A Hydra callback that presses Ctrl-C at the start of one job, for tests that stop a sweep between rounds.

Added on the command line (`+hydra.callbacks.interrupt._target_=tests.sweep_interrupt.InterruptAtSeed`), it
does nothing unless INTERRUPT_AT_SEED names a seed, so that the very same command, run again without it,
resumes the sweep.
"""

import os

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ENV = "INTERRUPT_AT_SEED"
TARGET = "tests.sweep_interrupt.InterruptAtSeed"


class InterruptAtSeed(Callback):
    def on_job_start(self, config: DictConfig, **kwargs) -> None:
        if os.environ.get(ENV) is not None and int(config.seed) == int(os.environ[ENV]):
            raise KeyboardInterrupt
