"""The json-file log the supervisor writes (Docker's format, one JSON object a line), read back:
a line parsed, lines rendered to the body of `docker logs` (in C from the file's bytes, or in
Python), the rotated files and the live one read in order, followed across rotation and truncation.

The C renderer is servin._native's `servin_render_log` (native/logrender.c); without the extension
everything is rendered in Python, with the same bytes out.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, NamedTuple

from servin import stdcopy

try:
    from servin._native import ffi, lib  # type: ignore[import-not-found,import-untyped,unused-ignore]
except ImportError:  # the extension is built by `make install`; without it, pure Python
    ffi = lib = None


class LogLine(NamedTuple):
    """One json-file entry (a NamedTuple: millions are made when a big log is read)."""

    stream: str  # "stdout" | "stderr"
    time: str  # RFC3339Nano as written
    data: bytes


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


def parse_line(raw: bytes) -> LogLine | None:
    """One json-file line; None for one that is not an entry (damaged, another shape)."""
    try:
        d = json.loads(raw)
        return LogLine(d["stream"], d["time"], d["log"].encode("utf-8", "surrogateescape"))
    except (ValueError, KeyError, TypeError):
        return None


def _parse_many(raws: list[bytes]) -> list[LogLine]:
    """A batch of entries in one json.loads (3x less CPU than one call per line); a batch
    with a damaged entry falls back to line by line, skipping what does not parse."""
    try:
        entries = json.loads(b"[" + b",".join(raws) + b"]")
        return [LogLine(d["stream"], d["time"], d["log"].encode("utf-8", "surrogateescape")) for d in entries]
    except (ValueError, KeyError, TypeError):
        return [line for raw in raws if (line := parse_line(raw)) is not None]


def _wanted(line: LogLine, q: LogQuery) -> bool:
    if line.stream == "stdout" and not q.stdout or line.stream == "stderr" and not q.stderr:
        return False
    if q.since_ns or q.until_ns:
        t = parse_time_ns(line.time)
        if q.since_ns and t < q.since_ns or q.until_ns and t > q.until_ns:
            return False
    return True


# ---- the files: rotated ones oldest first, then the live one, followed -------------------------


def log_files(path: Path) -> list[Path]:
    """The rotated files (x.log.N … x.log.1) oldest first, then the live one."""
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1:]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    return [p for _, p in sorted(rotated, reverse=True)] + [path]


async def _complete_chunks(f: BinaryIO) -> AsyncIterator[bytes]:
    """The file's complete lines from its position, a chunk (ending in a newline) per read; a
    partial last line is left unread."""
    pending = b""
    while chunk := await asyncio.to_thread(f.read, 1 << 20):
        pending += chunk
        cut = pending.rfind(b"\n") + 1
        if cut:
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        f.seek(-len(pending), 1)


CAUGHT_UP = b""  # what _chunks yields once everything already written was read


async def _chunks(path: Path, *, follow: bool, skip_written: bool,
                  done: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The complete lines of the log, rotated files first, in chunks; then CAUGHT_UP; then, with
    `follow`, new lines as they are written, across rotations and truncation, until `done()` (asked
    before each read) was true and that read found nothing."""
    if not skip_written:
        for older in log_files(path)[:-1]:
            try:
                with open(older, "rb") as g:
                    async for chunk in _complete_chunks(g):
                        yield chunk
            except FileNotFoundError:
                continue  # rotated away while we read
    try:
        f = open(path, "rb")  # noqa: SIM115 - held across awaits
    except FileNotFoundError:
        yield CAUGHT_UP
        return
    try:
        if skip_written:
            f.seek(0, 2)
        else:
            async for chunk in _complete_chunks(f):
                yield chunk
        yield CAUGHT_UP
        if not follow:
            return
        while True:
            finished = done()
            got = False
            async for chunk in _complete_chunks(f):
                got = True
                yield chunk
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
            if finished:
                return
            await asyncio.sleep(0.05)
    finally:
        f.close()


# ---- reading: parsed lines, or the `docker logs` body straight from the bytes --------------------


async def read_log(path: Path, q: LogQuery, still_running: Callable[[], bool]) -> AsyncIterator[list[LogLine]]:
    """Batches of the lines of the log (and its rotated files) that match; with `follow`, keep
    going, across rotations, until the container has stopped and everything was read."""
    everything = q.stdout and q.stderr and not q.since_ns and not q.until_ns
    tail: deque[LogLine] | None = deque(maxlen=q.tail) if q.tail is not None else None
    caught_up = False

    def done() -> bool:
        return not still_running() or bool(q.until_ns) and time.time_ns() > q.until_ns

    async for chunk in _chunks(path, follow=q.follow, skip_written=q.tail == 0, done=done):
        if chunk is CAUGHT_UP or not chunk:
            caught_up = True
            if tail:
                yield list(tail)
            tail = None
            continue
        raws = chunk.split(b"\n")[:-1]
        if not caught_up:  # what is already written: in batches, straight out or into the tail window
            lines = _parse_many(raws)
            batch = lines if everything else [line for line in lines if _wanted(line, q)]
            if tail is not None:
                tail.extend(batch)
            elif batch:
                yield batch
            continue
        batch = []
        for raw in raws:
            line = parse_line(raw)
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


def renders_natively(q: LogQuery) -> bool:
    """Whether `render_log` serves the query (no time window, no tail: the Python reader does those)."""
    return not q.since_ns and not q.until_ns and q.tail is None


async def render_log(path: Path, q: LogQuery, still_running: Callable[[], bool], *, tty: bool,
                     timestamps: bool) -> AsyncIterator[bytes]:
    """The response body of `docker logs` (stdcopy frames, or bare for a Tty container) rendered
    from the json-file bytes by the C renderer: no Python object per line."""
    async for chunk in _chunks(path, follow=q.follow, skip_written=False, done=lambda: not still_running()):
        if chunk:
            out = await asyncio.to_thread(render, chunk, stdout=q.stdout, stderr=q.stderr, tty=tty,
                                          timestamps=timestamps)
            if out:
                yield out


def frame(lines: Iterable[LogLine], *, tty: bool, timestamps: bool) -> bytes:
    """Parsed lines as `docker logs` sends them: stdcopy frames (bare payloads for a Tty container),
    each payload prefixed by "<time> " with timestamps."""
    parts = []
    for line in lines:
        payload = (line.time.encode() + b" " + line.data) if timestamps else line.data
        if tty:
            parts.append(payload)
        else:
            parts += (stdcopy.header(stdcopy.STDOUT if line.stream == "stdout" else stdcopy.STDERR, len(payload)),
                      payload)
    return b"".join(parts)


def render(chunk: bytes, *, stdout: bool, stderr: bool, tty: bool, timestamps: bool) -> bytes:
    """`docker logs` bytes of `chunk`, complete json-file lines (it ends with a newline): in C
    (servin_render_log), with Python's json for the lines the C parser leaves to it (another
    shape, such as Docker's `attrs`). 200 MB of log is millions of lines: no Python object is made
    per line here."""
    flags = (1 if stdout else 0) | (2 if stderr else 0) | (4 if tty else 0) | (8 if timestamps else 0)
    if lib is None:
        return _render_py(chunk, 0, len(chunk), flags)
    n = len(chunk)
    cap = n + 16 * chunk.count(b"\n") + 64
    src = ffi.from_buffer(chunk)
    out = ffi.new("char[]", cap)
    outlen = ffi.new("size_t *")
    stopped = ffi.new("int *")
    parts: list[bytes] = []
    pos = 0
    while pos < n:
        consumed = lib.servin_render_log(src + pos, n - pos, out, cap, outlen, flags, stopped)
        if outlen[0]:
            parts.append(ffi.buffer(out, outlen[0])[:])
        pos += consumed
        if stopped[0] == 1:  # one line the C parser does not take: json decides
            end = chunk.index(b"\n", pos) + 1
            parts.append(_render_py(chunk, pos, end, flags))
            pos = end
        elif stopped[0] == 2 or consumed == 0 and not outlen[0]:
            break
    return b"".join(parts)


def _render_py(chunk: bytes, start: int, end: int, flags: int) -> bytes:
    lines = (line for raw in chunk[start:end].split(b"\n") if raw and (line := parse_line(raw)) is not None)
    wanted = [line for line in lines if (1 if line.stream == "stdout" else 2 if line.stream == "stderr" else 0) & flags]
    return frame(wanted, tty=bool(flags & 4), timestamps=bool(flags & 8))
