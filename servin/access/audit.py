"""The audit log: one JSON line per authenticated request (who, what, the answer), rotated by size,
written by a thread so the event loop never waits on the disk, with secrets cut out of the path."""

from __future__ import annotations

import collections
import datetime
import json
import logging
import os
import re
import threading
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

QUEUE_LIMIT = 65_536  # entries waiting for the writer; beyond that they are counted and reported, not kept
BATCH = 512  # entries that wake the writer before its next turn
FLUSH_SECONDS = 0.2  # the writer's turn: an entry reaches the file at most this late
# query parameters whose values are credentials (compared lowercased, after percent-decoding)
SECRET_PARAMS = frozenset({"api_key", "apikey", "api-key", "x-api-key", "token", "access_token", "id_token",
                           "refresh_token", "password"})
# a Servin key (svk_<id>_<secret>) or a JWT (header.payload.signature) wherever it shows up
_SECRET_TEXT = re.compile(r"(svk_[0-9a-fA-F]+_)[A-Za-z0-9_\-]+=*|eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
REDACTED = "REDACTED"


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    time: datetime.datetime  # UTC
    principal: str  # "key:<id>", "token:<sub>", "cert:<subject CN>", "unix"
    method: str
    path: str  # path and query, as asked; the log redacts it
    status: int
    remote: str  # client address ("" on the unix socket)


def redact(path_and_query: str) -> str:
    """The values of credential parameters (api_key=, token=, access_token=, ...) and any key or JWT text
    replaced by REDACTED; everything else as it was."""
    path, sep, query = path_and_query.partition("?")
    if sep:
        pairs = []
        for pair in query.split("&"):
            name, eq, _ = pair.partition("=")
            if eq and urllib.parse.unquote_plus(name).lower() in SECRET_PARAMS:
                pair = f"{name}={REDACTED}"
            pairs.append(pair)
        query = "&".join(pairs)
    return _SECRET_TEXT.sub(lambda m: (m[1] or "") + REDACTED, path + sep + query)


def rfc3339_nano(t: datetime.datetime) -> str:
    """Docker's fixed-width RFC 3339 with nanoseconds in UTC (2026-12-06T09:20:54.123456000Z); a naive
    time is taken as UTC."""
    if t.tzinfo is not None:
        t = t.astimezone(datetime.UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def to_json_line(entry: AuditEntry) -> bytes:
    return json.dumps({"time": rfc3339_nano(entry.time), "principal": entry.principal, "method": entry.method,
                       "path": redact(entry.path), "status": entry.status, "remote": entry.remote},
                      separators=(",", ":")).encode() + b"\n"


class AuditLog:
    """JSON lines in `path` (0600), rotated when the next line would pass `max_bytes`: audit.log →
    audit.log.1 → ... → audit.log.<max_files-1>, the oldest dropped. `record` only queues; a writer thread
    writes; `close` writes what is queued and stops it (a record after that is written at once)."""

    def __init__(self, path: Path, *, max_bytes: int, max_files: int) -> None:
        if max_bytes < 1 or max_files < 1:
            raise ValueError(f"audit log {path}: max_bytes and max_files must be at least 1 "
                             f"(got {max_bytes}, {max_files})")
        self.path = path
        self._max_bytes, self._max_files = max_bytes, max_files
        # record() only appends (deque appends are atomic): no lock, no wake-up of the writer per
        # request; the writer takes what is there every FLUSH_SECONDS, or at once past BATCH entries
        self._pending: collections.deque[AuditEntry] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # one writer at a time: the thread, or record() after close()
        self._fd = -1
        self._size = 0
        self._chunk: list[bytes] = []
        self._dropped = 0
        self._closed = False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._thread = threading.Thread(target=self._run, name="servin-audit", daemon=True)
        self._thread.start()

    def record(self, entry: AuditEntry) -> None:
        if self._closed:
            self._write([entry], keep_open=False)
            return
        if len(self._pending) >= QUEUE_LIMIT:
            self._dropped += 1  # the writer reports it; blocking the event loop on a stuck disk is worse
            return
        self._pending.append(entry)
        if len(self._pending) == BATCH:
            self._wake.set()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join()
        with self._lock:
            if self._fd >= 0:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = -1

    def _run(self) -> None:
        while True:
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            stopping = self._closed
            batch = []
            while self._pending:
                batch.append(self._pending.popleft())
            if batch:
                self._write(batch)
            if stopping:
                return

    def _write(self, entries: list[AuditEntry], *, keep_open: bool = True) -> None:
        lines = [to_json_line(e) for e in entries]
        with self._lock:
            try:
                self._write_locked(lines)
            except OSError as exc:
                log.error("audit log %s: %d entries not written: %s", self.path, len(lines), exc)
                self._close_fd()
            if not keep_open:
                self._close_fd()
            if self._dropped:
                dropped, self._dropped = self._dropped, 0
                log.error("audit log %s: %d entries dropped: the writer fell behind", self.path, dropped)

    def _write_locked(self, lines: list[bytes]) -> None:
        if self._fd < 0 or self._moved():
            self._open()
        for line in lines:
            if self._size and self._size + len(line) > self._max_bytes:
                self._rotate()
            self._chunk.append(line)
            self._size += len(line)
        self._flush_chunk()

    def _open(self) -> None:
        self._close_fd()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.fchmod(self._fd, 0o600)
        self._size = os.fstat(self._fd).st_size

    def _moved(self) -> bool:
        """Whether the file was renamed or removed under us (logrotate): then a new one is opened."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._fd)
        return (st.st_dev, st.st_ino) != (mine.st_dev, mine.st_ino)

    def _flush_chunk(self) -> None:
        """The lines gathered since the last rotation, in one write."""
        if self._chunk:
            data, self._chunk = b"".join(self._chunk), []
            os.write(self._fd, data)

    def _rotate(self) -> None:
        self._flush_chunk()
        self._close_fd()
        rotated = [self.path.with_name(f"{self.path.name}.{i}") for i in range(1, self._max_files)]
        if rotated:
            for older, newer in zip(reversed(rotated[:-1]), reversed(rotated[1:]), strict=True):
                if os.path.lexists(older):
                    os.replace(older, newer)
            os.replace(self.path, rotated[0])
        else:
            os.unlink(self.path)
        self._open()

    def _close_fd(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
