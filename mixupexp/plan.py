"""usage: python -m mixupexp.plan [--multirun] [GROUP=OPTION ...] [KEY=VALUE ...]

The dry run of `python -m mixupexp.train` with the same arguments: nothing is trained and nothing is written (but
the cache of this machine's speed calibration). Every job is composed and checked as the real command does; bad
input gets the same one line and exit status 2.

What it prints:
  job N: OVERRIDES            each job of the command, then its run directory and what the command would do
      DIR: STATE              with it: finished (nothing), resumable (from its last checkpoint), failed: retry,
                              new, duplicate of job K, running elsewhere, refused
  price: ...                  a sweep's runs and time, and the power its seeds buy (a sequential sweep: its
                              rounds, the runs it may take and those it is expected to save; a tuning sweep: its
                              trials so far and the most runs it may take)
  N jobs, M distinct runs: ...  the count by state and the time left, from the finished runs' time per epoch or
                              a calibration of this machine

Exit status: 0 when the command could run, 2 when it would be refused.

  python -m mixupexp.plan --multirun augment=none,mixup seed=0,1,2   # what a sweep would train, and its price
  python -m mixupexp.plan experiment=seed_study_sequential           # a preset's rounds before it runs
"""

from __future__ import annotations

import sys
from typing import Optional

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.runs.command_plan import check_command_line
from mixupexp.runs.dry_run import describe


def main(argv: Optional[list[str]] = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in args):
        print(__doc__.strip())
        return 0
    plan = check_command_line(args)  # one line and exit 2 on bad input or missing data, as the real command
    if plan is None:
        print("error: nothing to plan for this command line", file=sys.stderr)
        return 2
    print("\n".join(describe(plan)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
