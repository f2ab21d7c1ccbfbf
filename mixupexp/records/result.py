"""Reading a run's result.json: what it must hold to count as a run's record, and the problem in words where it
does not.

A run writes result.json atomically, so a file that is not JSON, not an object, holds no config or claims `ok`
without an accuracy was damaged or edited by hand. It is never taken for a run: the summary names it and leaves
it out, and the train command refuses the directory with one line instead of starting over it. This module
imports neither torch nor pandas: the summary and the checks before a command read results too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional

from mixupexp.config.schema import ConfigError
from mixupexp.records.status import RunStatus

RESULT = "result.json"
# Numbers a finished run's result may hold (each may be absent, or null where it could not be measured).
NUMERIC = ("test_acc", "test_loss", "test_ece", "val_acc", "val_loss", "train_loss", "train_seconds", "wall_seconds")
FGSM_PREFIX = "fgsm_acc_"
# The sections of a config; a result's config may lack some (runs from before they existed), never hold other types.
CONFIG_SECTIONS = ("model", "data", "augment", "optimizer", "trainer", "eval", "logger")


class UnreadableResult(ConfigError):
    """A result.json that cannot be a run's record; `problem` says why, in words, and the message what to do."""

    def __init__(self, path: Path, problem: str):
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path} {problem}; fix it, or move it out of the way to train this run afresh (nothing "
                         "in the directory was changed)")

    def __reduce__(self):
        return type(self), (self.path, self.problem)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def result_problem(result: Any) -> Optional[str]:
    """Why a parsed result.json cannot be a run's record (`is not a JSON object`, ...), or None if it can."""
    if not isinstance(result, dict):
        return f"is not a JSON object (it holds {json.dumps(result)[:40]})"
    config = result.get("config")
    if not isinstance(config, dict):
        return "holds no config" if config is None else f"holds a config that is not an object ({config!r:.40})"
    for section in CONFIG_SECTIONS:
        if section in config and config[section] is not None and not isinstance(config[section], dict):
            return f"holds a config whose {section} is not an object ({config[section]!r:.40})"
    status = result.get("status")
    if status not in {s.value for s in RunStatus}:
        return f"has status {status!r}, which no run writes"
    for key, value in result.items():
        if (key in NUMERIC or key.startswith(FGSM_PREFIX)) and value is not None and not _is_number(value):
            return f"has {key} {value!r:.40}, not a number"
    if status == RunStatus.OK:
        acc = result.get("test_acc")
        if acc is None:
            return "says status ok but has no test_acc"
        if not (math.isfinite(acc) and 0 <= acc <= 100):
            return f"says status ok but its test_acc is {acc}, not a percentage"
    return None


def read_result(path: Path) -> Optional[dict]:
    """The run's record in `path`; None where there is no such file; UnreadableResult where there is one that
    cannot be a run's record."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UnreadableResult(path, f"cannot be read ({e.strerror or e})") from e
    try:
        result = json.loads(data.decode())
    except ValueError as e:  # JSONDecodeError, and UnicodeDecodeError for bytes that are not text
        reason = "it is empty" if not data.strip() else getattr(e, "msg", None) or "not UTF-8 text"
        raise UnreadableResult(path, f"is not valid JSON ({reason})") from e
    problem = result_problem(result)
    if problem is not None:
        raise UnreadableResult(path, problem)
    return result
