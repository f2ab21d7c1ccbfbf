"""How a job's log lines behave: a line that cannot be written never buries the job's error, and where runs train
side by side each line says whose it is."""

from __future__ import annotations

import contextlib
import logging

log = logging.getLogger("mixupexp")


@contextlib.contextmanager
def job_logging(name: str):
    """While the job trains: a log line that cannot be written (a full disk under train.log) is dropped, not
    raised as a traceback over the job's own error; and where runs train side by side, a sweep's jobs under any
    launcher but Hydra's basic one, each line is prefixed with the run's name (a parallel launcher's workers write
    to one terminal, and "epoch 3/30 ..." alone would not say whose epoch it was)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mixupexp.config.hydra_internals import BASIC_LAUNCHER

    logging.raiseExceptions = False
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or hydra_cfg.launcher.get("_target_") == BASIC_LAUNCHER:
        yield
        return

    def prefix(record: logging.LogRecord) -> bool:
        record.msg = f"[{name}] {record.msg}"
        return True

    log.addFilter(prefix)
    try:
        yield
    finally:
        log.removeFilter(prefix)
