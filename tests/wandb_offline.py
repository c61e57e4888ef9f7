"""Read the metrics an offline W&B run wrote, from the run's own `.wandb` file.

The file is a LevelDB-style log (32 KiB blocks of CRC-framed chunks) of wandb's protobuf
`Record`s; wandb 0.31 ships the protobuf classes but no Python reader, so tests decode it here.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = struct.Struct("<4sHB")  # ":W&B", magic, version
CHUNK = struct.Struct("<IHB")  # crc32, length, type (1 full, 2 first, 3 middle, 4 last)


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    ident, _, _ = HEADER.unpack_from(data)
    assert ident == b":W&B", f"{path} is not a W&B run file"
    pos, pending = HEADER.size, b""
    while pos + CHUNK.size <= len(data):
        room = BLOCK - pos % BLOCK
        if room < CHUNK.size:
            pos += room
            continue
        _, length, kind = CHUNK.unpack_from(data, pos)
        if kind == 0:  # zero padding up to the end of the block
            pos += room
            continue
        chunk = data[pos + CHUNK.size : pos + CHUNK.size + length]
        pos += CHUNK.size + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def history(run_dir: Path) -> list[dict]:
    """Every `run.log` row of the offline run under `run_dir` (searched for a run-*.wandb file)."""
    files = sorted(Path(run_dir).rglob("run-*.wandb"))
    assert files, f"no offline W&B run file under {run_dir}"
    rows = []
    for record in records(files[-1]):
        if record.WhichOneof("record_type") == "history":
            rows.append(
                {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json)
                    for item in record.history.item
                }
            )
    return rows
