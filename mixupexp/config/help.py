"""`python -m mixupexp.train --help [overrides]`: examples, the groups with their options, and the config keys
that the chosen options use (the keys an option ignores, e.g. `num_train` under `data=cifar10`, are left out).

Hydra's own `--help` prints every key of the schema whatever the options; this one is composed with the options
given on the same command line, so `--help data=synthetic` shows the keys of synthetic data.
"""

from __future__ import annotations

import pandas as pd
import yaml
from omegaconf import OmegaConf

from mixupexp.config.options import ignored_keys
from mixupexp.config.presets import PRESET_GROUPS
from mixupexp.config.registry import GROUPS, registered

EXAMPLES = """\
  python -m mixupexp.train debug=smoke                                # does it all run? seconds on a CPU
  python -m mixupexp.train augment=mixup augment.alpha=0.4            # one run with mixup
  python -m mixupexp.train --multirun augment=none,mixup seed=0,1,2   # a sweep, then its summary
  python -m mixupexp.train experiment=seed_study debug=subset         # a preset, on a 2 000-image subset
  python -m mixupexp.train logger=[csv,tensorboard]                   # TensorBoard records too
  python -m mixupexp.evaluate outputs/runs/RUN 'eval.fgsm_eps=[16]'   # evaluate a finished run again"""


def wants_help(argv: list[str]) -> bool:
    return "--help" in argv or "-h" in argv


def used_config(cfg) -> dict:
    """The config without the keys its chosen options ignore and without unchosen (null) loggers."""
    container = OmegaConf.to_container(cfg, resolve=True)
    flat = pd.json_normalize(container, sep=".").iloc[0].to_dict()
    skip = ignored_keys(flat)

    def keep(node: dict, prefix: str) -> dict:
        kept = {}
        for key, value in node.items():
            dotted = prefix + key
            if dotted in skip or (prefix == "logger." and value is None):
                continue
            kept[key] = keep(value, dotted + ".") if isinstance(value, dict) else value
        return kept

    return keep(container, "")


def help_text(overrides: list[str]) -> str:
    from mixupexp.config.compose import compose_config
    from mixupexp.config.suggest import groups_and_options

    cfg = compose_config(overrides, return_hydra_config=True)
    choices = cfg.hydra.runtime.choices
    lines = ["mixupexp: does mixup help this model on this data, by how much, and is it real?", "",
             "Usage: python -m mixupexp.train [--multirun] [GROUP=OPTION ...] [KEY=VALUE ...]", "",
             "Examples:", EXAMPLES, "",
             "Groups (GROUP=OPTION; * = chosen):"]
    groups = groups_and_options()
    for group, options in groups.items():
        if group.startswith("hydra/") or group in PRESET_GROUPS:
            continue
        listed = ", ".join(f"{o}*" if o == choices.get(group) else o for o in options)
        extra = "   (several at once: logger=[csv,tensorboard])" if group == "logger" else ""
        lines.append(f"  {group}: {listed}{extra}")
    lines += ["", "What each option does (augment: where it mixes, in the loader, on the batch or in the model):"]
    for group in GROUPS:
        for name, option in registered(group).items():
            stage = f" [{option.stage}]" if option.stage else ""
            lines.append(f"  {f'{group}={name}':<24}{option.summary}{stage}")
    lines += ["", "Presets (NAME=OPTION, `+` optional; debug= comes after experiment= and overrides it):"]
    for group in PRESET_GROUPS:
        lines.append(f"  {group}: {', '.join(groups.get(group, []))}")
    launchers = ", ".join(groups.get("hydra/launcher", []))
    lines += ["", f"Launchers: hydra/launcher={launchers} (with --multirun)", "",
              "Config (KEY=VALUE; only the keys the chosen options use):"]
    cfg = OmegaConf.masked_copy(cfg, [k for k in cfg.keys() if k != "hydra"])
    lines.append(yaml.safe_dump(used_config(cfg), sort_keys=False, default_flow_style=None).rstrip())
    lines += ["", "More: --cfg job prints the whole composed config; --hydra-help lists Hydra's own options;",
              "tab completion of groups, options and keys: eval \"$(mixupexp-train -sc install=bash)\", then",
              "mixupexp-train aug<TAB> (mixupexp-train is this command, installed as a script)."]
    return "\n".join(lines)
