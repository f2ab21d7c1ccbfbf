"""Read a W&B offline run file (run-*.wandb): LevelDB's log format holding W&B's protobuf `Record` messages.

wandb no longer ships a Python reader for these files; the format is LevelDB's log (32 KiB blocks of chunks with a
7-byte header: CRC, length, type) after a 7-byte W&B header, and each record parses with wandb's own protobuf.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

BLOCK = 32768
HEADER = 7  # W&B file header, and also the size of a chunk header
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def raw_records(path: Path) -> list[bytes]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, offset = [], b"", HEADER
    while offset + HEADER <= len(data):
        left_in_block = BLOCK - offset % BLOCK
        if left_in_block < HEADER:  # the tail of a block too short for a header is padding
            offset += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[offset : offset + HEADER])
        chunk = data[offset + HEADER : offset + HEADER + length]
        offset += HEADER + length
        if kind == FULL:
            records.append(chunk)
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            records.append(pending + chunk)
        elif kind == 0 and length == 0:
            break
    return records


def read_run(path: Path) -> dict:
    """{'history': [{key: value} per logged step], 'summary': {...}, 'config': {...}, 'name', 'group'}"""
    from wandb.proto import wandb_internal_pb2 as pb

    run = {"history": [], "summary": {}, "config": {}, "name": None, "group": None}
    for raw in raw_records(path):
        record = pb.Record()
        record.ParseFromString(raw)
        kind = record.WhichOneof("record_type")
        if kind == "history":
            run["history"].append({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.history.item})
        elif kind == "summary":
            run["summary"].update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                   for item in record.summary.update})
        elif kind == "config":
            run["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "run":
            run["name"], run["group"] = record.run.display_name, record.run.run_group
            run["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
    return run
