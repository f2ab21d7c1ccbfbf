"""Preset groups (`experiment=NAME`, `debug=NAME`): selected like any other group, `+` optional.

Both groups are in the defaults list as null (after `_self_`, so that a preset overrides the defaults), which lets
`experiment=seed_study` work without the `+`. Hydra would then refuse the `+` form ("Multiple values"), which
older commands and the usual Hydra habit use, so it is accepted by dropping the `+`.
"""

from __future__ import annotations

PRESET_GROUPS = ("experiment", "debug")


def without_preset_plus(argv: list[str]) -> list[str]:
    """argv with `+experiment=X` / `+debug=X` written as `experiment=X` / `debug=X`."""
    return [arg[1:] if arg.startswith("+") and arg[1:].split("=", 1)[0] in PRESET_GROUPS else arg for arg in argv]
