"""A CRC-32 of every value of a saved object (each tensor's bytes, the text of each plain value), keyed by its
place in the object (`model.conv1.weight`, `optimizer.state.0.exp_avg`, `rows.2.test_acc`).

A torch file can be damaged inside its tensor records and still load: a zip whose records hold other bytes is a
valid zip. The CRCs, written with the object and compared after it is loaded, tell that file from the one that
was written. A CRC finds damage, not a forgery.
"""

from __future__ import annotations

import zlib
from typing import Any

import torch


def _crc(value: Any) -> int:
    if isinstance(value, torch.Tensor):
        flat = value.detach().cpu().contiguous().reshape(-1)
        return zlib.crc32(flat.view(torch.uint8).numpy())
    return zlib.crc32(repr(value).encode())


def checksums(tree: Any, prefix: str = "") -> dict[str, int]:
    """The CRC of every leaf of nested dicts, lists and tuples."""
    if isinstance(tree, dict):
        items = tree.items()
    elif isinstance(tree, (list, tuple)):
        items = enumerate(tree)
    else:
        return {prefix: _crc(tree)}
    found: dict[str, int] = {}
    for key, value in items:
        found.update(checksums(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


def mismatches(tree: Any, recorded: Any) -> list[str]:
    """The places whose value does not match its recorded CRC, or that are missing on either side."""
    if not isinstance(recorded, dict):
        return ["the record of checksums"]
    now = checksums(tree)
    return sorted(key for key in set(now) | set(recorded) if now.get(key) != recorded.get(key))
