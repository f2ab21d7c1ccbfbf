"""The registry of config-group options: each option (`augment=mixup`, `model=simple_cnn`, ...) is registered
once, where its builder lives, with the keys of its group that it ignores.

    @register("augment", "mixup", ignores=("augment.mix_after_blocks",), stage="loader")
    def build_mixup(cfg): ...

The vocabulary that `validate` accepts, the ignored-key rules of run identity, `--help` and each stage's
dispatch (`registered("model")[cfg.name].build(...)`) all read this registry; `config/options.py` imports every stage so that it is
complete, and `tests/test_options.py` checks it against `conf/<group>/*.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

GROUPS = ("data", "augment", "model", "optimizer")


@dataclass(frozen=True)
class Option:
    group: str
    name: str
    build: Callable[..., Any]
    # Dotted keys of the group (or of other groups) that this option does not use: set or not, they change
    # nothing, so run identity leaves them out and a value given for one on the command line is refused.
    ignores: tuple[str, ...]
    # Where in the flow the option acts (augment: `loader`, `batch`, `hidden` or `none`); shown by --help.
    stage: str
    summary: str
    # Keys the option reads only to find its data, not to decide what is trained (where torchvision keeps
    # CIFAR-10): run identity leaves them out, so that the same data found elsewhere is the same run.
    locates: tuple[str, ...] = ()


_OPTIONS: dict[str, dict[str, Option]] = {group: {} for group in GROUPS}


def register(group: str, name: str, *, ignores: tuple[str, ...] = (), stage: str = "", summary: str = "",
             locates: tuple[str, ...] = ()):
    """Decorator: register `build` as the builder of option `name` of config group `group`."""
    if group not in _OPTIONS:
        raise ValueError(f"unknown config group {group!r}; groups: {', '.join(GROUPS)}")

    def decorate(build: Callable[..., Any]) -> Callable[..., Any]:
        known = _OPTIONS[group].get(name)
        if known is not None and known.build is not build:
            raise ValueError(f"{group}={name} is registered twice ({known.build.__qualname__}, {build.__qualname__})")
        _OPTIONS[group][name] = Option(group, name, build, tuple(ignores), stage,
                                       summary or first_sentence(build.__doc__ or ""), tuple(locates))
        return build

    return decorate


def first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, whole (a help line that stops mid-sentence says
    less than none)."""
    paragraph = " ".join(doc.strip().split("\n\n", 1)[0].split())
    end = next((i + 1 for i, c in enumerate(paragraph) if c == "." and paragraph[i + 1:i + 2] in ("", " ")), None)
    return paragraph[:end] if end else paragraph


def registered(group: str) -> dict[str, Option]:
    """The options of `group` registered so far, by name (the order the modules were imported in says nothing)."""
    return dict(sorted(_OPTIONS[group].items()))


def unregister(group: str, name: str) -> None:
    """Remove an option (a test's toy option, when the test ends)."""
    _OPTIONS[group].pop(name, None)
