"""Tar streams of filesystem trees, written the way Docker's pkg/archive writes them.

Headers come from ``lstat`` only: numeric uid/gid with empty user and group names (a name lookup
would run NSS, which inside a container's root could load the container's own libraries), the
permission bits with setuid/setgid/sticky, whole-second mtimes, devices, fifos, symlinks, and
hardlinks recorded once (later names become link entries). Sockets are skipped as Docker skips
them. The only xattr carried is ``security.capability``, as Docker does.

Files are opened without following a symlink (``O_NOFOLLOW``), relative to a directory fd when the
caller walks with fds, so a tree that changes while it is read cannot redirect a read elsewhere. A
file that shrinks while it is read is padded with zeros so the stream stays well formed.
"""

from __future__ import annotations

import errno
import os
import stat
import tarfile
from typing import BinaryIO

CAPABILITY_XATTR = "security.capability"
_CHUNK = 1 << 20


class _Padded:
    """Reads exactly ``size`` bytes from ``fd``: zeros once the file ends early."""

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._left = size
        self._eof = False

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self._left:
            n = self._left
        parts: list[bytes] = []
        want = n
        while want > 0:
            data = b"" if self._eof else os.read(self._fd, min(want, _CHUNK))
            if not data:
                self._eof = True
                data = bytes(want)
            parts.append(data)
            want -= len(data)
        self._left -= n
        return b"".join(parts)


def _capability(fd: int) -> bytes | None:
    try:
        return os.getxattr(fd, CAPABILITY_XATTR)
    except OSError:
        return None


def header(name: str, st: os.stat_result, *, linkname: str = "") -> tarfile.TarInfo | None:
    """The tar header for an lstat result (None for sockets, which tar cannot hold)."""
    ti = tarfile.TarInfo(name)
    ti.mode = stat.S_IMODE(st.st_mode)
    ti.uid, ti.gid = st.st_uid, st.st_gid
    ti.uname = ti.gname = ""
    ti.mtime = int(st.st_mtime)
    fmt = stat.S_IFMT(st.st_mode)
    if fmt == stat.S_IFREG:
        ti.type, ti.size = tarfile.REGTYPE, st.st_size
    elif fmt == stat.S_IFDIR:
        ti.type = tarfile.DIRTYPE
    elif fmt == stat.S_IFLNK:
        ti.type, ti.linkname = tarfile.SYMTYPE, linkname
    elif fmt in (stat.S_IFCHR, stat.S_IFBLK):
        ti.type = tarfile.CHRTYPE if fmt == stat.S_IFCHR else tarfile.BLKTYPE
        ti.devmajor, ti.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
    elif fmt == stat.S_IFIFO:
        ti.type = tarfile.FIFOTYPE
    else:
        return None
    return ti


class TreeWriter:
    """Appends filesystem entries to a streamed PAX tar on ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
        self._inodes: dict[tuple[int, int], str] = {}
        self.count = 0  # entries written

    def add_info(self, ti: tarfile.TarInfo) -> None:
        """Append a header without data (links, whiteouts, directories)."""
        self.tar.addfile(ti)
        self.count += 1

    def add(self, arcname: str, name: str, st: os.stat_result, *, dir_fd: int | None = None) -> None:
        """Append ``name`` (relative to ``dir_fd`` if given) under ``arcname``; ``st`` is its lstat."""
        linkname = os.readlink(name, dir_fd=dir_fd) if stat.S_ISLNK(st.st_mode) else ""
        ti = header(arcname, st, linkname=linkname)
        if ti is None:
            return
        if ti.type == tarfile.REGTYPE and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self._inodes.get(key)
            if first is not None:
                ti.type, ti.linkname, ti.size = tarfile.LNKTYPE, first, 0
                self.add_info(ti)
                return
            self._inodes[key] = ti.name
        if ti.type != tarfile.REGTYPE:
            self.add_info(ti)
            return
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP):
                return  # removed or swapped for a symlink while we walked: skip it, as Docker does
            raise
        try:
            now = os.fstat(fd)
            if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (st.st_dev, st.st_ino):
                return  # swapped (for a device node, say) since its lstat: never read what it is now
            cap = _capability(fd)
            if cap is not None:
                ti.pax_headers = {"SCHILY.xattr." + CAPABILITY_XATTR: cap.decode("utf-8", "surrogateescape")}
            self.tar.addfile(ti, _Padded(fd, ti.size))
            self.count += 1
        finally:
            os.close(fd)

    def close(self) -> None:
        self.tar.close()


def scan_sorted(dir_fd: int) -> list[tuple[str, os.stat_result]]:
    """The entries of a directory fd with their lstat, in Go's byte order (as filepath.Walk)."""
    out = []
    for name in sorted(os.listdir(dir_fd), key=os.fsencode):
        try:
            out.append((name, os.stat(name, dir_fd=dir_fd, follow_symlinks=False)))
        except FileNotFoundError:
            continue
    return out


def open_dir(name: str, dir_fd: int | None = None) -> int:
    """A directory fd that never follows a symlink in its last component."""
    return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
