"""Tar-split: rebuild a layer's exact original tar from its extracted tree.

While a layer is extracted, :class:`SplitRecorder` sits between the (uncompressed) tar stream and
``tarfile`` and writes every byte of the stream to ``tar-split.bin`` (gzip) EXCEPT the payloads of
regular files, which become references ``(path under diff/, size)``. :func:`replay` walks the
records and reads the payloads back from ``diff/``, so ``sha256(replay) == diff_id``.

Records (after gunzip): ``R`` u32 length + raw bytes; ``F`` u64 size + u32 length + path (fs
encoding); ``E`` end. A payload whose path is replaced later in the same tar (a duplicate entry, a
whiteout, a directory over a file) is moved to ``tar-split.d/<n>`` (``n``: the reference's ordinal)
before the path is reused, and replay reads it from there.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import os
import stat
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Protocol

from servin.errors import SystemError_
from servin import safefs

SPLIT_FILE = "tar-split.bin"
SIDE_DIR = "tar-split.d"
_FLUSH = 1 << 16
_CHUNK = 1 << 20
_INF = 1 << 62


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class SplitRecorder:
    """A pass-through reader that records the stream minus registered payload ranges."""

    def __init__(self, inner: _Readable, split_path: Path) -> None:
        self._inner = inner
        self._path = split_path
        self._file = open(split_path, "wb")  # noqa: SIM115 - closed in finish()/abort()
        self._gz = gzip.GzipFile(fileobj=self._file, mode="wb", compresslevel=1, mtime=0)
        self.pos = 0  # stream offset of the next byte from inner
        self._pending = bytearray()  # stream bytes [_pstart, pos) not yet written
        self._pstart = 0
        self._skip_end = 0  # bytes below this offset are a payload being dropped
        self._barrier = 0  # pending bytes below this offset can be written out
        self._ordinal = 0
        self._live: dict[str, int] = {}  # extracted path -> reference ordinal
        self._cut: tuple[str, int] | None = None  # the current member's reference

    # reading (tarfile calls this)

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        if data:
            start = self.pos
            self.pos += len(data)
            keep_from = max(start, self._skip_end)
            if keep_from < self.pos:
                if not self._pending:
                    self._pstart = keep_from
                self._pending += data[keep_from - start :]
                if len(self._pending) > _FLUSH:
                    self._flush(self._barrier)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    # what extraction tells us

    def member(self, next_header: int, payload: tuple[int, int, str] | None) -> None:
        """A member was parsed; ``payload`` is (data offset, size, path) when its data is extracted
        to ``path`` (relative to diff/); ``next_header`` is where the next member starts."""
        if self._cut is not None:  # the previous member's file is written by now
            self._live[self._cut[0]] = self._cut[1]
            self._cut = None
        if payload is not None:
            offset, size, rel = payload
            self._flush(offset)
            self._raw_record_header_ref(size, rel)
            end = offset + size
            if self.pos <= end:
                self._pending.clear()
                self._skip_end = end
            else:
                del self._pending[: end - self._pstart]
                self._pstart = end
            self._cut = (rel, self._ordinal)
            self._ordinal += 1
        self._barrier = max(self._barrier, next_header)

    def end_of_members(self) -> None:
        self._barrier = _INF

    def replacing(self, rel: str, dest: Path) -> None:
        """``rel`` (and anything under it) is about to be removed: keep referenced payloads."""
        prefix = rel + "/"
        doomed = [p for p in self._live if p == rel or p.startswith(prefix)] if self._live else []
        if not doomed:
            return
        side = self._path.parent / SIDE_DIR
        side.mkdir(exist_ok=True)
        for p in doomed:
            os.rename(dest / p, side / str(self._live.pop(p)))

    # output

    def _flush(self, upto: int) -> None:
        n = min(upto, self._pstart + len(self._pending)) - self._pstart
        if n > 0:
            chunk = bytes(self._pending[:n])
            del self._pending[:n]
            self._pstart += n
            self._gz.write(b"R" + struct.pack(">I", len(chunk)))
            self._gz.write(chunk)

    def _raw_record_header_ref(self, size: int, rel: str) -> None:
        path = os.fsencode(rel)
        self._gz.write(b"F" + struct.pack(">QI", size, len(path)) + path)

    def finish(self) -> None:
        self._flush(_INF)
        self._gz.write(b"E")
        self._gz.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def abort(self) -> None:
        self._gz.close()
        self._file.close()


def _read_exact(f: IO[bytes] | gzip.GzipFile, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise SystemError_("tar-split record truncated")
    return data


def replay(layer_dir: Path, diff_id: str) -> Iterator[bytes]:
    """The layer's original tar bytes in chunks; raises SystemError_ when they do not hash to diff_id."""
    side = layer_dir / SIDE_DIR
    moved = set(os.listdir(side)) if side.is_dir() else set()
    diff = layer_dir / "diff"
    h = hashlib.sha256()
    ordinal = 0
    with gzip.open(layer_dir / SPLIT_FILE, "rb") as f:
        while True:
            kind = f.read(1)
            if kind == b"R":
                (n,) = struct.unpack(">I", _read_exact(f, 4))
                data = _read_exact(f, n)
                h.update(data)
                yield data
            elif kind == b"F":
                size, n = struct.unpack(">QI", _read_exact(f, 12))
                rel = os.fsdecode(_read_exact(f, n))
                name = str(ordinal)
                path = side / name if name in moved else diff / rel
                ordinal += 1
                left = size
                with _open_payload(path, diff, rel) as payload:
                    while left:
                        data = payload.read(min(left, _CHUNK))
                        if not data:
                            raise SystemError_(f"layer {diff_id}: {rel} is shorter than recorded")
                        left -= len(data)
                        h.update(data)
                        yield data
            elif kind == b"E":
                break
            else:
                raise SystemError_(f"layer {diff_id}: tar-split is corrupt")
    if "sha256:" + h.hexdigest() != diff_id:
        raise SystemError_(f"layer {diff_id}: its content no longer matches its digest")


def _open_payload(path: Path, diff: Path, rel: str) -> IO[bytes]:
    """``path``, or, when the host cannot take it whole (ENAMETOOLONG: a layer path near PATH_MAX
    below the store's own prefix), ``rel`` reached from ``diff`` one directory at a time."""
    try:  # never through a link, as every other read of a layer's files
        return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb")
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG or path != diff / rel:
            raise
    root = safefs.open_root(diff)
    try:
        head, _, base = rel.rpartition("/")
        dfd = safefs.open_dir(root, head)
        try:
            fd = os.open(base, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        finally:
            os.close(dfd)
    finally:
        os.close(root)
    return os.fdopen(fd, "rb")


class ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        while self._pos >= len(self._buf):
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
            self._pos = 0
        n = min(len(b), len(self._buf) - self._pos)
        b[:n] = self._buf[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def open_stream(chunks: Iterator[bytes]) -> IO[bytes]:
    return io.BufferedReader(ChunkReader(chunks), buffer_size=_CHUNK)


def regenerate(diff: Path, out: IO[bytes]) -> None:
    """A deterministic tar of an overlay-format tree (for layers stored without a tar-split):
    sorted names, PAX format, whiteouts and opaque dirs turned back into ``.wh.`` entries. The tree
    is walked without recursion, with directory fds (safefs.DirStack), so any depth works: each
    entry is named through its directory's fd (``/proc/self/fd/N/name``), never by a long path."""
    def xattrs(path: str) -> dict[str, str]:
        out_: dict[str, str] = {}
        try:
            names = os.listxattr(path, follow_symlinks=False)
        except OSError:
            return out_
        for name in sorted(names):
            if name.startswith("trusted.overlay."):
                continue
            value = os.getxattr(path, name, follow_symlinks=False)
            out_["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
        return out_

    seen: dict[tuple[int, int], str] = {}
    root = safefs.open_root(diff)
    walk = safefs.DirStack(root)
    try:
        with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tf:

            def add(dir_fd: int, name: str, rel: str) -> bool:
                """Write the entry; True when it is a directory to walk into."""
                path = safefs.entry_path(dir_fd, name)
                st = os.lstat(path)
                if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                    head, _, base = rel.rpartition("/")
                    ti = tarfile.TarInfo(f"{head}/.wh.{base}" if head else f".wh.{base}")
                    ti.mtime = int(st.st_mtime)
                    tf.addfile(ti)
                    return False
                ti = tf.gettarinfo(path, arcname=rel)
                ti.uname = ti.gname = ""
                ti.pax_headers = xattrs(path)
                key = (st.st_dev, st.st_ino)
                if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                    if key in seen:
                        ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, seen[key], 0
                        tf.addfile(ti)
                        return False
                    seen[key] = rel
                if ti.isreg():
                    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
                    with os.fdopen(fd, "rb") as f:
                        tf.addfile(ti, f)
                else:
                    tf.addfile(ti)
                if not stat.S_ISDIR(st.st_mode):
                    return False
                try:
                    opaque = os.getxattr(path, "trusted.overlay.opaque", follow_symlinks=False) == b"y"
                except OSError:
                    opaque = False
                if opaque:
                    wh = tarfile.TarInfo(rel + "/.wh..wh..opq")
                    wh.mtime = int(st.st_mtime)
                    tf.addfile(wh)
                return True

            todo = [iter(sorted(os.listdir(root)))]  # per level: the names still to write
            rels = [""]
            while todo:
                name = next(todo[-1], None)
                if name is None:
                    todo.pop()
                    rels.pop()
                    if walk.depth:
                        walk.pop()
                    continue
                rel = f"{rels[-1]}/{name}" if rels[-1] else name
                if add(walk.fd, name, rel):
                    walk.push(name)
                    todo.append(iter(sorted(os.listdir(walk.fd))))
                    rels.append(rel)
    finally:
        walk.close()
        os.close(root)
