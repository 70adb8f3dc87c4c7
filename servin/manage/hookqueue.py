"""A webhook's deliveries on disk: one append-only journal per webhook, so a daemon killed at any instant
loses no event it had published and repeats at most the delivery that was in flight.

A journal is lines `<crc32 hex> <json>\\n`: `{"id", "event", "body", "t"}` appends a delivery, `{"done": id}`
marks it delivered (or given up). Each record is one write(2) the moment it is made (a kill -9 cannot
lose what the page cache holds); the fsyncs that guard against a power cut are batched by the owner
calling `sync()` once per loop tick. Loading keeps the deliveries without a `done`, in order, skips a
record whose checksum fails and cuts off a torn last line. A journal with nothing pending is truncated
to nothing; one grown large with delivered records is rewritten (atomically) with the pending only."""

from __future__ import annotations

import json
import logging
import os
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servin import atomicfile

log = logging.getLogger(__name__)

COMPACT_BYTES = 1 << 20  # rewrite a journal past this size when most of it is delivered
FILE_MODE = 0o600


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    id: str  # the delivery's id: X-Servin-Delivery, the same at every attempt
    event: str  # container.start, ...
    body: bytes  # the JSON posted
    enqueued: float  # unix time: the retries give up counting from here


def record(obj: dict[str, Any]) -> bytes:
    text = json.dumps(obj, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(text), text)


def _entry_record(e: Entry) -> bytes:
    return record({"id": e.id, "event": e.event, "body": e.body.decode(), "t": e.enqueued})


def parse(data: bytes, path: Path | str = "journal") -> tuple[list[Entry], bool]:
    """(the pending entries in order, whether the journal holds only them: no torn tail, damaged or
    delivered record to rewrite away)."""
    pending: OrderedDict[str, Entry] = OrderedDict()
    pos, clean = 0, True
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            log.warning("%s: dropping a torn last record (%d bytes)", path, len(data) - pos)
            return list(pending.values()), False
        line, pos = data[pos:end], end + 1
        obj = _checked(line)
        if obj is None:
            log.warning("%s: skipping a damaged record at byte %d", path, pos - len(line) - 1)
            clean = False
        elif "done" in obj:
            pending.pop(str(obj["done"]), None)
            clean = False
        else:
            e = Entry(id=str(obj["id"]), event=str(obj["event"]), body=str(obj["body"]).encode(),
                      enqueued=float(obj["t"]))
            pending[e.id] = e
    return list(pending.values()), clean


def _checked(line: bytes) -> dict[str, Any] | None:
    crc, _, text = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(text):
            return None
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not ("done" in obj or {"id", "event", "body", "t"} <= set(obj)):
        return None
    return obj


class Journal:
    """One webhook's queue. Thread-safe: events are appended in the publisher's thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._pending: OrderedDict[str, Entry] = OrderedDict()
        self._dirty = False
        data = path.read_bytes() if path.exists() else b""
        entries, clean = parse(data, path)
        self._pending.update((e.id, e) for e in entries)
        self._records = len(entries)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, FILE_MODE)
        os.fchmod(self._fd, FILE_MODE)
        self._size = len(data)
        if not clean:  # a torn tail, a damaged or delivered record: the pending alone are kept
            self._rewrite()

    def append(self, entry: Entry) -> None:
        with self._lock:
            self._write(_entry_record(entry))
            self._pending[entry.id] = entry
            self._records += 1

    def done(self, delivery_id: str) -> None:
        with self._lock:
            if self._pending.pop(delivery_id, None) is None:
                return
            if not self._pending:
                os.ftruncate(self._fd, 0)  # nothing pending: the file is empty again
                self._size, self._records, self._dirty = 0, 0, True
                return
            self._write(record({"done": delivery_id}))
            self._records += 1
            if self._size > COMPACT_BYTES and self._records > 2 * len(self._pending):
                self._rewrite()

    def head(self) -> Entry | None:
        with self._lock:
            return next(iter(self._pending.values()), None)

    def pending(self) -> list[Entry]:
        with self._lock:
            return list(self._pending.values())

    def sync(self) -> None:
        """fsync what was written since the last sync (called off the event loop, batched)."""
        with self._lock:
            if not self._dirty or self._fd < 0:
                return
            self._dirty = False
            fd = os.dup(self._fd)  # the fsync runs without the lock: appends go on meanwhile
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def destroy(self) -> None:
        """The webhook is gone: its pending deliveries with it."""
        self.close()
        self.path.unlink(missing_ok=True)

    def _write(self, data: bytes) -> None:
        if self._fd < 0:
            raise OSError(f"{self.path}: the journal is closed")
        os.write(self._fd, data)
        self._size += len(data)
        self._dirty = True

    def _rewrite(self) -> None:
        """The pending entries alone, renamed over the journal (fsync'd), and the new file opened."""
        data = b"".join(_entry_record(e) for e in self._pending.values())
        atomicfile.write_bytes(self.path, data, FILE_MODE)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW)
        self._size, self._records = len(data), len(self._pending)
