"""Hydra callback: summarise a sweep into its directory when the multirun ends (tables, summary.md, plots)."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

# mixupexp.summarize is imported inside the callbacks: Hydra loads this module for every run, single runs
# included, and the summary's statistics and plotting libraries take seconds to import.

log = logging.getLogger("mixupexp")


class SummarizeSweep(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from mixupexp.summarize import SummaryError, write_summary

        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            summary = write_summary([sweep_dir], sweep_dir)
        except SummaryError as e:
            log.error("no summary written: %s", e)
            return
        log.info("summary of %d configurations written to %s (and summary.md, plots)", len(summary),
                 sweep_dir / "summary.csv")
        from mixupexp.loggers import log_sweep_summary

        log_sweep_summary(config, sweep_dir)


class ReportFailures(Callback):
    """After the sweep (and its summary): if any run failed, say which in one line and exit non-zero."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        from mixupexp.summarize import find_results

        sweep_dir = Path(config.hydra.sweep.dir)
        failed = []
        for path in find_results([sweep_dir]):
            try:
                result = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            if result.get("status") != "ok":
                failed.append(f"{path.parent.relative_to(sweep_dir)} {result.get('status')}: {result.get('error', '')}")
        if failed:
            total = len(find_results([sweep_dir]))
            print(f"error: {len(failed)} of {total} runs in {sweep_dir} did not finish: {'; '.join(failed)}", file=sys.stderr)
            sys.exit(1)
