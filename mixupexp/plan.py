"""`python -m mixupexp.plan <train args>`: the dry run of a training command (runs/dry_run.py)."""

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
