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
    launcher but Hydra's basic one, each of the package's lines on the console is prefixed with the run's name (a
    parallel launcher's workers write to one terminal, and "epoch 3/30 ..." alone would not say whose epoch it
    was). The run's own train.log is left as it is: it holds one run's lines only."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from mixupexp.config.hydra_internals import BASIC_LAUNCHER

    logging.raiseExceptions = False
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN or hydra_cfg.launcher.get("_target_") == BASIC_LAUNCHER:
        yield
        return
    consoles = [h for h in logging.getLogger().handlers
                if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)]
    saved = [h.formatter for h in consoles]
    for handler, formatter in zip(consoles, saved):
        handler.setFormatter(NamedFormatter(name, formatter or logging.Formatter()))
    try:
        yield
    finally:
        for handler, formatter in zip(consoles, saved):
            handler.setFormatter(formatter)


class NamedFormatter(logging.Formatter):
    """A console formatter that puts the run's name before each of the package's messages; the record itself is
    not changed, so that the other handlers (the run's train.log) write it as before."""

    def __init__(self, name: str, base: logging.Formatter):
        super().__init__()
        self.name, self.base = name, base

    def format(self, record: logging.LogRecord) -> str:
        if not record.name.startswith(log.name):
            return self.base.format(record)
        named = logging.makeLogRecord(record.__dict__)
        named.msg = f"[{self.name}] {record.msg}"
        return self.base.format(named)
