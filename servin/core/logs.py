"""Reading the json-file log the supervisor writes (Docker's format, one JSON object a line)."""

from __future__ import annotations

import asyncio
import os
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import BinaryIO
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from servin.core.model import LogLine


@dataclass(frozen=True, slots=True, kw_only=True)
class LogQuery:
    stdout: bool = True
    stderr: bool = True
    since_ns: int = 0  # 0 = from the start
    until_ns: int = 0  # 0 = no end
    tail: int | None = None  # None = all
    follow: bool = False


def parse_time_ns(ts: str) -> int:
    """RFC3339Nano (as the shim writes, UTC 'Z') to unix nanoseconds."""
    main, _, frac = ts.rstrip("Z").partition(".")
    secs = int(datetime.fromisoformat(main + "+00:00").timestamp())
    return secs * 1_000_000_000 + int((frac + "000000000")[:9] if frac else 0)


def _parse_many(raws: list[bytes]) -> list[LogLine]:
    """A batch of entries in one json.loads (3x less CPU than one call per line); a batch
    with a damaged entry falls back to line by line, skipping what does not parse."""
    try:
        entries = json.loads(b"[" + b",".join(raws) + b"]")
        return [LogLine(d["stream"], d["time"], d["log"].encode("utf-8", "surrogateescape")) for d in entries]
    except (ValueError, KeyError, TypeError):
        return [line for raw in raws if (line := _parse(raw)) is not None]


def _parse(raw: bytes) -> LogLine | None:
    try:
        d = json.loads(raw)
        return LogLine(d["stream"], d["time"], d["log"].encode("utf-8", "surrogateescape"))
    except (ValueError, KeyError, TypeError):
        return None


def _wanted(line: LogLine, q: LogQuery) -> bool:
    if line.stream == "stdout" and not q.stdout or line.stream == "stderr" and not q.stderr:
        return False
    if q.since_ns or q.until_ns:
        t = parse_time_ns(line.time)
        if q.since_ns and t < q.since_ns or q.until_ns and t > q.until_ns:
            return False
    return True


def log_files(path: Path) -> list[Path]:
    """The rotated files (x.log.N … x.log.1) oldest first, then the live one."""
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


async def _complete_lines(f: BinaryIO) -> AsyncIterator[list[bytes]]:
    """The file's complete lines from its position, a batch per read; a partial last line is
    left unread."""
    pending = b""
    while chunk := await asyncio.to_thread(f.read, 1 << 20):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        if complete:
            yield complete
    if pending:
        f.seek(-len(pending), 1)


async def read_log(path: Path, q: LogQuery, still_running: Callable[[], bool]) -> AsyncIterator[list[LogLine]]:
    """Batches of the lines of the log (and its rotated files) that match; with `follow`, keep
    going, across rotations, until the container has stopped and everything was read."""

    everything = q.stdout and q.stderr and not q.since_ns and not q.until_ns

    def wanted(raws: list[bytes]) -> list[LogLine]:
        lines = _parse_many(raws)
        return lines if everything else [line for line in lines if _wanted(line, q)]

    tail: deque[LogLine] | None = deque(maxlen=q.tail) if q.tail is not None else None

    async def catch_up(g: BinaryIO) -> AsyncIterator[list[LogLine]]:
        """What is already written: straight out, or into the tail window."""
        async for raws in _complete_lines(g):
            batch = wanted(raws)
            if tail is not None:
                tail.extend(batch)
            elif batch:
                yield batch

    for older in log_files(path)[:-1]:
        if q.tail == 0:
            break
        try:
            with open(older, "rb") as g:
                async for batch in catch_up(g):
                    yield batch
        except FileNotFoundError:
            continue  # rotated away while we read
    try:
        f = open(path, "rb")  # noqa: SIM115 - held across awaits
    except FileNotFoundError:
        if tail:
            yield list(tail)
        return
    try:
        if q.tail == 0:
            f.seek(0, 2)
        else:
            async for batch in catch_up(f):
                yield batch
        if tail:
            yield list(tail)
        if not q.follow:
            return
        while True:
            running = still_running()
            got = False
            async for raws in _complete_lines(f):
                got = True
                batch = []
                for raw in raws:
                    line = _parse(raw)
                    if line is None:
                        continue
                    if q.until_ns and parse_time_ns(line.time) > q.until_ns:
                        if batch:
                            yield batch
                        return  # anything later is past `until`, whichever stream wrote it
                    if _wanted(line, q):
                        batch.append(line)
                if batch:
                    yield batch
            if got:
                continue
            try:
                st = os.stat(path)
            except FileNotFoundError:
                st = None
            if st is not None and st.st_ino != os.fstat(f.fileno()).st_ino:  # rotated: the new file
                f.close()
                f = open(path, "rb")  # noqa: SIM115
                continue
            if st is not None and st.st_size < f.tell():  # truncated in place (max-file 1)
                f.seek(0)
                continue
            if not running or q.until_ns and time.time_ns() > q.until_ns:
                return
            await asyncio.sleep(0.05)
    finally:
        f.close()
