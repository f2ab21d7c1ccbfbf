"""The one check every `python -m mixupexp.<command>` makes first: that `mixupexp` is this package.

Run from the folder that holds a clone named `mixupexp`, Python takes the clone itself for the package (the
current folder comes first on its path, and an editable install is found only after it): `mixupexp.data` would be
the clone's `data/` folder of downloaded images, and the command would fail with an import error that names none
of this.
"""

from __future__ import annotations

import sys


def refuse_shadowed_package() -> None:
    """Exit with one line and status 2 when `mixupexp` is a folder without the package's __init__.py."""
    import mixupexp

    if getattr(mixupexp, "__file__", None) is None:
        folder = next(iter(mixupexp.__path__), "mixupexp")
        print(f"error: Python takes the folder {folder} for the mixupexp package, since the command runs in the "
              "folder above it; run it from inside that folder (cd mixupexp) or from any other", file=sys.stderr)
        sys.exit(2)
