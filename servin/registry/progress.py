"""Where pull and push report: typed progress events (images/progress.py) into a sink, from the
event loop or, through ``emit_threadsafe``, from a worker thread; and the meter of a transfer.
The API renders the events as Docker's JSON lines (api/wire/progress.py)."""

from __future__ import annotations

import asyncio
import time

from servin.images.progress import LayerProgress, ProgressEvent, ProgressSink, Status


class Output:
    """A progress sink for one pull or push (made on the event loop; the sink runs there).

    ``started`` turns true with the first event: until then a failure can still be answered with
    an HTTP status instead of inside the 200 stream, as dockerd does.
    """

    def __init__(self, sink: ProgressSink) -> None:
        self.started = False
        self._sink = sink
        self._loop = asyncio.get_running_loop()

    def emit(self, event: ProgressEvent) -> None:
        self.started = True
        self._sink(event)

    def emit_threadsafe(self, event: ProgressEvent) -> None:
        self._loop.call_soon_threadsafe(self.emit, event)

    def message(self, text: str, id_: str = "") -> None:
        self.emit(Status(text=text, id=id_))

    def update(self, id_: str, action: str) -> None:
        self.emit(LayerProgress(id=id_, action=action))


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
                self._emit(LayerProgress(id=self.id, action=self.action, current=self.current, total=self.total))
