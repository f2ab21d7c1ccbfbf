"""`python -m mixupexp.summarize DIR [DIR ...]`: (re)build runs.csv, summary.csv, summary.md and the plots of sweep directories (analysis/)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.analysis.collect import SummaryError, duplicates_line, left_out_lines
from mixupexp.analysis.table import FAMILIES, summary_parameters
from mixupexp.records.files import WriteError
from mixupexp.runs.report import caveat_lines, verdict_lines, write_summary
from mixupexp.runs.sweeps import report_of_directory

# The columns printed by `python -m mixupexp.summarize`; summary.csv and summary.md hold the rest.
CONSOLE_COLUMNS = ("n", "acc_mean", "acc_std", "acc_ci95_low", "acc_ci95_high", "n_failed", "n_interrupted",
                   "delta_acc_vs_baseline", "delta_acc_p_value", "delta_acc_p_holm", "p_improvement", "selected",
                   # a sequential sweep's (runs/sequential_summary.py)
                   "seeds", "delta_acc_av_low", "delta_acc_av_high", "runs_saved")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mixupexp.summarize",
        description="Summarise the runs under one or more sweep directories into runs.csv, summary.csv, summary.md "
                    "and PNG plots.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep (or run) directories to collect result.json from")
    parser.add_argument("--out", type=Path, default=None, help="where to write the summary (default: the first DIR)")
    parser.add_argument("--no-plots", dest="plots", action="store_false", help="write no PNG plots")
    parser.add_argument("--families", choices=FAMILIES, default="summary",
                        help="which comparisons share one 5 %% error budget: every comparison of the summary "
                             "(default), or those with each baseline")
    args = parser.parse_args(argv)
    for d in args.dirs:
        if not d.is_dir():
            print(f"error: {d} is not a directory", file=sys.stderr)
            return 2
    try:
        return _summarize(args)
    except SummaryError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except WriteError as e:  # each file is written whole or not at all: none is left half written
        print(f"error: cannot write {e.path}: {os.strerror(e.errno).lower()}; write the summary elsewhere with "
              "--out DIR", file=sys.stderr)
        return 2


def _summarize(args) -> int:
    own = report_of_directory(args.dirs[0]) if len(args.dirs) == 1 and args.out is None else None
    if own is not None:  # a tuning study's directory: its own report
        print("\n".join(own.report(args.dirs[0], plots=args.plots)))
        print(f"wrote {args.dirs[0] / 'summary.md'}, trials.csv")
        return 0
    summary = write_summary(args.dirs, args.out or args.dirs[0], plots=args.plots, families=args.families)
    if summary.attrs["duplicates"]:
        print(duplicates_line(summary.attrs["duplicates"]))
    for line in left_out_lines(summary.attrs.get("left_out", [])):
        print(line)
    shown = summary_parameters(summary) + [c for c in CONSOLE_COLUMNS if c in summary]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(summary[shown].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    for line in verdict_lines(summary) + caveat_lines(summary.attrs["fixed"]):
        print(line)
    plots = " and plots" if args.plots else ""
    print(f"wrote {(args.out or args.dirs[0]) / 'runs.csv'}, summary.csv, summary.md{plots}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
