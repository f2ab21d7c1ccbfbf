"""`python -m mixupexp.cache [--clear]`: list or remove the decoded image-folder caches (data/cache.py)."""

from __future__ import annotations

import argparse
import sys

from mixupexp.package_check import refuse_shadowed_package  # noqa: E402

refuse_shadowed_package()  # before any import that the shadowing folder would break
from mixupexp.data.cache import DEFAULT_DIR, clear, list_caches


def _megabytes(size: int) -> str:
    return f"{size / 2**20:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mixupexp.cache",
                                     description="List (or --clear) the decoded image-folder caches.")
    parser.add_argument("--cache-dir", default=DEFAULT_DIR, help=f"the cache folder (data.cache_dir; default {DEFAULT_DIR})")
    parser.add_argument("--clear", action="store_true", help="remove the cache files in it (every one, or --folder's)")
    parser.add_argument("--folder", default=None, help="with --clear: only the caches of this image folder (data.root)")
    args = parser.parse_args(argv)
    if args.folder is not None and not args.clear:
        parser.error("--folder goes with --clear: python -m mixupexp.cache --clear --folder DIR")
    if args.clear:
        removed = clear(args.cache_dir, args.folder)
        of = f" of {args.folder}" if args.folder else ""
        print(f"removed {len(removed)} cache files{of} ({_megabytes(sum(e.size for e in removed))}) from "
              f"{args.cache_dir}")
        return
    entries = list_caches(args.cache_dir)
    if not entries:
        print(f"no caches in {args.cache_dir}")
        return
    for entry in entries:
        size = f", image_size {entry.image_size}" if entry.image_size else ""
        print(f"{entry.path}  {_megabytes(entry.size)}  {entry.folder or 'folder unknown'}{size}")
    print(f"{len(entries)} caches, {_megabytes(sum(e.size for e in entries))} in all; "
          "python -m mixupexp.cache --clear removes them")


if __name__ == "__main__":
    sys.exit(main())
