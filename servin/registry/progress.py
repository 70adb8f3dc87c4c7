"""The JSON progress lines dockerd writes for pull and push, and the writer that streams them.

Line shapes (Go's jsonmessage field order): ``{"status":…,"id":…}`` for a message,
``{"status":…,"progressDetail":{…},"progress":"[==>  ] 1MB/2MB","id":…}`` for a layer's state,
``{"progressDetail":{},"aux":{…}}`` and ``{"errorDetail":{"message":…},"error":…}``.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_size(n: float) -> str:
    """go-units HumanSize: 4 significant digits, powers of 1000, no space (``2.593MB``)."""
    i = 0
    while n >= 1000 and i < len(_UNITS) - 1:
        n /= 1000
        i += 1
    return f"{n:.4g}{_UNITS[i]}"


def bar(current: int, total: int) -> str:
    """The ``progress`` string dockerd computes server-side (a 200-column terminal, no ETA)."""
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    pct = min(int(current / total * 100) // 2, 50)
    box = "[" + "=" * pct + ">" + " " * max(50 - pct, 0) + "] "
    if current > total:
        return box + f"{human_size(current):>8}"
    return box + f"{human_size(current):>8}/{human_size(total)}"


def message(text: str, id_: str = "") -> dict[str, Any]:
    msg: dict[str, Any] = {"status": text}
    if id_:
        msg["id"] = id_
    return msg


def update(id_: str, action: str, current: int = 0, total: int = 0) -> dict[str, Any]:
    detail: dict[str, int] = {}
    if current:
        detail["current"] = current
    if total:
        detail["total"] = total
    msg: dict[str, Any] = {"status": action, "progressDetail": detail}
    text = bar(current, total)
    if text:
        msg["progress"] = text
    msg["id"] = id_
    return msg


def aux(obj: dict[str, Any]) -> dict[str, Any]:
    return {"progressDetail": {}, "aux": obj}


def error(text: str) -> dict[str, Any]:
    return {"errorDetail": {"message": text}, "error": text}


class Output:
    """Where pull and push report: a sink of progress dicts (thread-safe through ``emit_threadsafe``).

    ``started`` turns true with the first line: until then a failure can still be answered with an
    HTTP status instead of inside the 200 stream, as dockerd does.
    """

    def __init__(self) -> None:
        self.started = False
        self._loop = asyncio.get_running_loop()

    def emit(self, msg: dict[str, Any]) -> None:
        self.started = True
        self._write(msg)

    def emit_threadsafe(self, msg: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self.emit, msg)

    def _write(self, msg: dict[str, Any]) -> None:  # overridden
        pass

    def message(self, text: str, id_: str = "") -> None:
        self.emit(message(text, id_))

    def update(self, id_: str, action: str) -> None:
        self.emit(update(id_, action))


class Recorder(Output):
    """Keeps every line (tests, and callers that need no stream)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[dict[str, Any]] = []

    def _write(self, msg: dict[str, Any]) -> None:
        self.lines.append(msg)


class Meter:
    """Rate-limited progress of one transfer: every 512 kB or 1 % and at most every 100 ms."""

    def __init__(self, out: Output, id_: str, action: str, total: int, *, threadsafe: bool = False) -> None:
        self.out, self.id, self.action, self.total = out, id_, action, total
        self.current = 0
        self._last = 0
        self._last_t = 0.0
        self._step = min(512 * 1024, int(total * 0.01)) if total > 0 else 512 * 1024
        self._emit = out.emit_threadsafe if threadsafe else out.emit

    def add(self, n: int) -> None:
        self.current += n
        if self.current - self._last > self._step or (self.total and self.current == self.total):
            now = time.monotonic()
            if now - self._last_t >= 0.1 or self.current == self.total:
                self._last, self._last_t = self.current, now
                self._emit(update(self.id, self.action, self.current, self.total))


def dumps(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode() + b"\r\n"
