""""Did you mean ...?": the nearest valid override for a misspelled group, option or key.

The vocabulary is what `python -m mixupexp.train` accepts: the config groups and their options (the YAML files
of the config package) and the dotted keys of the composed default config (every key of the schema).
"""

from __future__ import annotations

import difflib
import re

from omegaconf import OmegaConf

from mixupexp.config.compose import config_folder


def groups_and_options() -> dict[str, list[str]]:
    """{group: [option, ...]} from the config package's folders (hydra/launcher included)."""
    found: dict[str, list[str]] = {}

    def walk(folder, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir() and not entry.name.startswith("__"):
                walk(entry, f"{prefix}{entry.name}/")
            elif entry.name.endswith(".yaml") and prefix:
                found.setdefault(prefix.rstrip("/"), []).append(entry.name[: -len(".yaml")])

    walk(config_folder(), "")
    return {group: sorted(options) for group, options in sorted(found.items())}


def dotted_keys(cfg) -> list[str]:
    """Every key path of a config, inner nodes and leaves: augment, augment.alpha, logger.tensorboard.dir, ..."""
    keys: list[str] = []

    def walk(node, prefix: str) -> None:
        for key, value in node.items():
            keys.append(prefix + str(key))
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")

    walk(OmegaConf.to_container(cfg, resolve=False) if not isinstance(cfg, dict) else cfg, "")
    return keys


def _closest(word: str, candidates: list[str]) -> str | None:
    matches = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return matches[0] if matches else None


def nearest_key(key: str, keys: list[str]) -> str | None:
    """The valid dotted key meant by `key`: a close spelling (augment.alpah -> augment.alpha), else a key whose
    last part it names or nearly names (alpha -> augment.alpha)."""
    if key in keys:
        return None
    close = _closest(key, keys)
    if close is not None:
        return close
    leaf = key.rsplit(".", 1)[-1]
    by_leaf: dict[str, list[str]] = {}
    for candidate in keys:
        by_leaf.setdefault(candidate.rsplit(".", 1)[-1], []).append(candidate)
    leaf_match = _closest(leaf, list(by_leaf))
    if leaf_match is None:
        return None
    # Several keys may end alike (data.image_size, ...): prefer the one sharing the typed prefix, else the shortest.
    prefix = key.rsplit(".", 1)[0] if "." in key else ""
    return min(by_leaf[leaf_match], key=lambda c: (not c.startswith(prefix), len(c)))


def suggest(override: str, groups: dict[str, list[str]], keys: list[str]) -> str | None:
    """The override meant by a misspelled one, e.g. `agument=mixup` -> `augment=mixup`, or None."""
    if "=" not in override:
        return None
    raw_key, value = override.split("=", 1)
    plus = re.match(r"^[+~]*", raw_key).group(0)
    key = raw_key[len(plus):]
    if key in groups:  # a known group: the option is misspelled
        option = _closest(value, groups[key])
        return f"{plus}{key}={option}" if option and option != value else None
    group = _closest(key, list(groups))
    if group is not None and (value in groups[group] or _closest(value, groups[group])):
        option = value if value in groups[group] else _closest(value, groups[group])
        return f"{plus}{group}={option}"
    meant = nearest_key(key, keys)
    return f"{plus}{meant}={value}" if meant is not None else None


def default_config():
    """The composed default config of `python -m mixupexp.train`."""
    from mixupexp.config.compose import compose_config

    return compose_config()


def did_you_mean(message: str, overrides: list[str], cfg=None) -> str | None:
    """For an error `message` about one of `overrides`, the corrected override; `cfg`: the default config.

    The override is the one whose key (or group/option) the message quotes, as Hydra's and OmegaConf's messages
    do ('agument', 'augment/cutmixx', 'alpah')."""
    unknown = re.match(r"unknown key ([\w.]+); known keys: (.+)$", message)
    if unknown:  # the schema's keys at that level are in the message, chosen loggers' keys included
        prefix, _, leaf = unknown[1].rpartition(".")
        known = [k.strip() for k in unknown[2].split(",")]
        meant = _closest(leaf, known)
        typed = next((o for o in overrides if o.split("=", 1)[0].lstrip("+~") == unknown[1]), None)
        if meant is not None and typed is not None:
            return f"{prefix + '.' if prefix else ''}{meant}={typed.split('=', 1)[1]}"
    quoted = set(re.findall(r"'([^']+)'", message)) | set(re.findall(r"unknown key ([\w.]+)", message))
    if not quoted:
        return None
    groups = groups_and_options()
    for override in overrides:
        if "=" not in override:
            continue
        raw_key, value = override.split("=", 1)
        key = raw_key.lstrip("+~")
        leaf = key.rsplit(".", 1)[-1]
        if quoted & {key, leaf, f"{key}/{value}"}:
            if key.startswith("hydra."):  # a key of Hydra's node: meant among the keys of the node it names
                return _suggest_hydra_key(override, [o for o in overrides if o.lstrip("+~").startswith("hydra/")])
            return suggest(override, groups, dotted_keys(cfg if cfg is not None else default_config()))
    return None


def _suggest_hydra_key(override: str, choices: list[str]) -> str | None:
    """hydra.sweeper.racin=true -> hydra.sweeper.racing=true: the keys of the hydra node composed with the
    command's hydra/sweeper and hydra/launcher choices (`choices`), never a key of another group."""
    from mixupexp.config.compose import compose_config

    raw_key, value = override.split("=", 1)
    key = raw_key.lstrip("+~")
    node = key.rsplit(".", 1)[0]
    try:
        hydra_cfg = compose_config(choices, return_hydra_config=True)
    except Exception:  # a choice is broken too: no suggestion rather than a wrong one
        return None
    keys = [f"hydra.{k}" for k in dotted_keys(OmegaConf.masked_copy(hydra_cfg, ["hydra"]).hydra)]
    siblings = [k.rsplit(".", 1)[1] for k in keys if k.rsplit(".", 1)[0] == node]
    meant = _closest(key.rsplit(".", 1)[1], siblings)  # the leaves alone: the shared prefix would match anything
    return f"{node}.{meant}={value}" if meant is not None else None
