"""Reading a W&B `.wandb` transaction log (the file an offline run writes).

wandb 0.2x/0.3x no longer ships a Python reader (its Go core reads the file), so the framing is
read here: a 7-byte header (`:W&B`, magic 0xBEE1, version 0) then LevelDB-log records in 32 KiB
blocks, each chunk with a CRC-32 seeded by its type byte. The records themselves are decoded
with wandb's own protobuf classes (`wandb.proto.wandb_internal_pb2.Record`), so what a record
means is always wandb's definition. Tested against files written by wandb 0.31.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from ..errors import RunlakeError

MAGIC = b":W&B"
_BLOCK = 32 * 1024
_HEADER = 7
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_SEEDS = {t: zlib.crc32(bytes([t])) for t in (_FULL, _FIRST, _MIDDLE, _LAST)}


class WandbFormatError(RunlakeError):
    """A file that is not a W&B transaction log of a version runlake reads."""


def chunks(path: str) -> Iterator[bytes]:
    """Every record's bytes, in order. A torn tail (a killed writer) ends the log quietly;
    a corrupt chunk in the middle raises, naming the offset."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != MAGIC or len(data) < _HEADER:
        raise WandbFormatError(f"{path} is not a W&B run file (.wandb): it does not start with ':W&B'")
    magic, version = struct.unpack("<HB", data[4:7])
    if magic != 0xBEE1 or version != 0:
        raise WandbFormatError(
            f"{path}: W&B log format magic {magic:#x} version {version} is not one runlake reads "
            "(it reads magic 0xbee1 version 0, written by wandb 0.12 to 0.31)"
        )
    pos, pending = _HEADER, bytearray()
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:  # zero padding: the writer stopped here
            break
        body = data[pos + _HEADER : pos + _HEADER + length]
        if len(body) < length:
            break  # torn tail
        if kind not in _SEEDS or zlib.crc32(body, _SEEDS[kind]) != crc:
            if pos + _HEADER + length >= len(data) - _HEADER:
                break  # the last chunk, half written
            raise WandbFormatError(f"{path}: corrupt record at byte {pos} (checksum mismatch)")
        pos += _HEADER + length
        if kind == _FULL:
            yield bytes(body)
        elif kind == _FIRST:
            pending = bytearray(body)
        elif kind == _MIDDLE:
            pending += body
        else:
            pending += body
            yield bytes(pending)
            pending = bytearray()
