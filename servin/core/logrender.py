"""`docker logs` bytes straight from json-file lines, in C (servin._native.servin_render_log),
with Python's json for the lines the C parser leaves to it (another shape, such as Docker's
`attrs`). 200 MB of log is millions of lines: no Python object is made per line here."""

from __future__ import annotations

import struct
from collections.abc import Iterable

from servin.core.logs import _parse
from servin.core.model import LogLine

try:
    from servin._native import ffi, lib  # type: ignore[import-not-found]
except ImportError:  # the extension is built by `make install`; without it, pure Python
    ffi = lib = None

_HEADER = struct.Struct(">BxxxL")


def render(chunk: bytes, *, stdout: bool, stderr: bool, tty: bool, timestamps: bool) -> bytes:
    """`chunk`: complete json-file lines (it ends with a newline)."""
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


def frame(lines: Iterable[LogLine], *, tty: bool, timestamps: bool) -> bytes:
    """Parsed lines as `docker logs` sends them: stdcopy frames (bare payloads for a Tty container),
    each payload prefixed by "<time> " with timestamps."""
    parts = []
    for line in lines:
        payload = (line.time.encode() + b" " + line.data) if timestamps else line.data
        parts.append(payload if tty else _HEADER.pack(1 if line.stream == "stdout" else 2, len(payload)) + payload)
    return b"".join(parts)


def _render_py(chunk: bytes, start: int, end: int, flags: int) -> bytes:
    lines = (line for raw in chunk[start:end].split(b"\n") if raw and (line := _parse(raw)) is not None)
    wanted = [line for line in lines if (1 if line.stream == "stdout" else 2 if line.stream == "stderr" else 0) & flags]
    return frame(wanted, tty=bool(flags & 4), timestamps=bool(flags & 8))
