"""Docker's stream framing (moby's pkg/stdcopy), the one place it is written and read.

A multiplexed stream is a run of frames: one byte naming the stream (0 stdin, 1 stdout, 2 stderr,
3 an error of the daemon's), three zero bytes, the payload's length as a big-endian uint32, then
the payload. The supervisor speaks it to the daemon (with one frame kind of its own, the exit
status of an exec), the json-file log reader renders it, and the API sends it to clients.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import NamedTuple

STDIN, STDOUT, STDERR, SYSTEMERR = 0, 1, 2, 3
HEADER = struct.Struct(">BxxxI")
HEADER_SIZE = HEADER.size


class Frame(NamedTuple):
    stream: int
    payload: bytes


def frame(stream: int, payload: bytes) -> bytes:
    """One frame: its header, then the payload."""
    return HEADER.pack(stream, len(payload)) + payload


def header(stream: int, length: int) -> bytes:
    return HEADER.pack(stream, length)


def parse_header(raw: bytes) -> tuple[int, int]:
    """(stream, payload length) of an 8-byte header."""
    stream, length = HEADER.unpack(raw)
    return stream, length


async def read_frame(reader: asyncio.StreamReader) -> Frame | None:
    """The next frame; None at a clean or torn end of the stream."""
    try:
        stream, length = parse_header(await reader.readexactly(HEADER_SIZE))
        return Frame(stream, await reader.readexactly(length))
    except asyncio.IncompleteReadError:
        return None


async def frames(reader: asyncio.StreamReader) -> AsyncIterator[Frame]:
    """Every frame of a stream, in order."""
    while (f := await read_frame(reader)) is not None:
        yield f
