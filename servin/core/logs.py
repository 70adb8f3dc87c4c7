"""Reading the json-file log the supervisor writes (Docker's format, one JSON object a line)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
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


def _parse(raw: bytes) -> LogLine | None:
    try:
        d = json.loads(raw)
        return LogLine(stream=d["stream"], time=d["time"], data=d["log"].encode("utf-8", "surrogateescape"))
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


async def read_log(path: Path, q: LogQuery, still_running: Callable[[], bool]) -> AsyncIterator[LogLine]:
    """Yield the lines of the log that match; with `follow`, keep yielding until the
    container has stopped and everything it wrote was read."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - held across awaits
    except FileNotFoundError:
        return
    with f:
        lines: list[LogLine] | deque[LogLine]
        lines = deque(maxlen=q.tail) if q.tail is not None else []
        if q.tail != 0:
            for raw in await asyncio.to_thread(f.readlines):
                if not raw.endswith(b"\n"):
                    f.seek(-len(raw), 1)
                    break
                line = _parse(raw)
                if line is not None and _wanted(line, q):
                    lines.append(line)
        else:
            f.seek(0, 2)
        for line in lines:
            yield line
        if not q.follow:
            return
        pending = b""
        while True:
            running = still_running()
            chunk = f.read(1 << 16)
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    line = _parse(raw)
                    if line is None:
                        continue
                    if q.until_ns and parse_time_ns(line.time) > q.until_ns:
                        return  # anything later is past `until`, whichever stream wrote it
                    if _wanted(line, q):
                        yield line
                continue
            if not running or q.until_ns and time.time_ns() > q.until_ns:
                return
            await asyncio.sleep(0.05)
