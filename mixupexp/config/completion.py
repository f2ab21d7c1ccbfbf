"""Tab completion (`-sc query=bash`, which the shell runs at every TAB) without the training stack.

Hydra answers a completion query from the config alone, before any task would run; the modules that train, check
and summarise import torch and pandas, which take seconds, so `python -m mixupexp.train` hands a completion
request to this module before importing them.
"""

from __future__ import annotations

import sys


def wants_completion(argv: list[str]) -> bool:
    return any(arg == "-sc" or arg.startswith("--shell-completion") for arg in argv)


def answer_completion(argv: list[str]) -> None:
    """For a completion request, let Hydra answer it with the project's config and exit; else return."""
    if not wants_completion(argv):
        return
    import hydra

    import mixupexp.config.schema  # noqa: F401  (registers the structured config)
    from mixupexp.config.compose import CONFIG_NAME, CONFIG_PATH, VERSION_BASE

    @hydra.main(version_base=VERSION_BASE, config_path=CONFIG_PATH, config_name=CONFIG_NAME)
    def never_runs(cfg) -> None:  # Hydra returns before any task for -sc
        raise SystemExit(f"{sys.argv[0]}: a completion request ran a job")

    never_runs()
    sys.exit(0)
