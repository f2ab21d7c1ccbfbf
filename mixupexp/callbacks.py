"""Hydra callback: summarise a sweep into its directory when the multirun ends."""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from mixupexp.summarize import SummaryError, write_summary

log = logging.getLogger("mixupexp")


class SummarizeSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            summary = write_summary([sweep_dir], sweep_dir)
        except SummaryError as e:
            log.error("no summary written: %s", e)
            return
        log.info("summary of %d configurations written to %s", len(summary), sweep_dir / "summary.csv")
