"""Layer tars → overlay-format directory trees, hashed while they stream.

The diff_id of a layer is the sha256 of its *uncompressed* tar stream; compressed input (gzip, bzip2,
xz) is detected by its magic bytes. Extraction preserves numeric ownership, modes (setuid included),
mtimes, symlinks, hardlinks, device nodes, fifos and PAX xattrs, and turns AUFS-style whiteouts into
what overlayfs understands: ``.wh.NAME`` → a 0:0 character device ``NAME``; ``.wh..wh..opq`` → the
xattr ``trusted.overlay.opaque=y`` on the directory. Paths that would escape the root are refused,
and so are whiteouts of the directory itself or its parent. Nothing is created, changed or removed
through a symlink, whatever the members do: every operation goes through directory fds opened
without following one (safefs.py), and directory metadata, set at the end, is set on directories
opened again that way.
"""

from __future__ import annotations

import bz2
import errno
import gzip
import hashlib
import lzma
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servin.errors import InvalidArgument, SystemError_
from servin import safefs
from servin.images.union import OPAQUE_XATTR
from servin.images.tarsplit import SplitRecorder

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
WHITEOUT_META_PREFIX = ".wh..wh."
OVERLAY_XATTR_PREFIX = "trusted.overlay."
_CHUNK = 1 << 20
_PATH_MAX = 4096


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class _Prefixed:
    """A reader that yields ``head`` first, then the rest of ``inner``."""

    def __init__(self, head: bytes, inner: _Readable) -> None:
        self._head = head
        self._inner = inner

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data, self._head = self._head + self._inner.read(), b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            if len(data) < n:
                data += self._inner.read(n - len(data))
            return data
        return self._inner.read(n)


class HashingReader:
    """Counts and sha256-hashes everything read through it."""

    def __init__(self, inner: _Readable) -> None:
        self._inner = inner
        self.sha256 = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._inner.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.sha256.hexdigest()


def decompressed(stream: _Readable) -> _Readable:
    """Wrap ``stream`` in a decompressor when its magic says it is compressed."""
    head = b""
    while len(head) < 6:
        more = stream.read(6 - len(head))
        if not more:
            break
        head += more
    raw = _Prefixed(head, stream)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, "rb")  # type: ignore[call-overload]
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, "rb")  # type: ignore[arg-type]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        raise InvalidArgument("zstd-compressed layers are not supported")
    return raw


def digest_of_stream(stream: _Readable) -> tuple[str, int]:
    """sha256 digest (of the decompressed stream) and its size, without extracting."""
    reader = HashingReader(decompressed(stream))
    try:
        reader.drain()
    except (EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error) as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    return reader.digest(), reader.size


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractResult:
    diff_id: str
    size: int  # bytes of content: regular files (hardlinks once) and symlink targets
    tar_size: int = 0  # bytes of the uncompressed tar stream


def _clean_name(name: str) -> str:
    """The member path relative to the root, or raise when it would escape."""
    stripped = name.lstrip("/")
    while stripped.startswith("./"):
        stripped = stripped[2:]
    if stripped in ("", "."):
        return ""
    parts = stripped.split("/")
    if ".." in parts:
        raise InvalidArgument(f"invalid layer: path {name!r} escapes the layer root")
    norm = posixpath.normpath(stripped)
    if norm == ".." or norm.startswith(("../", "/")):
        raise InvalidArgument(f"invalid layer: path {name!r} escapes the layer root")
    if len(os.fsencode(norm)) >= _PATH_MAX:  # what save, push and the kernel's paths could not hold
        raise InvalidArgument(f"invalid layer: path {name[:64]!r}... is longer than {_PATH_MAX - 1} bytes")
    return "" if norm == "." else norm


def _walk_error(rel: str, e: OSError) -> InvalidArgument:
    if e.errno == errno.ELOOP:
        return InvalidArgument(f"invalid layer: path {rel!r} goes through a symlink")
    return InvalidArgument(f"invalid layer: parent of {rel!r} is not a directory")


def _chown(target: int | str, uid: int, gid: int, dir_fd: int | None = None) -> None:
    """fchown an fd, or fchownat an entry of ``dir_fd`` without following it."""
    try:
        if isinstance(target, int):
            os.chown(target, uid, gid)
        else:
            os.chown(target, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        # Unprivileged (tests): keep our own ownership.


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in member.pax_headers.items():
        name = key[len("SCHILY.xattr.") :]
        # overlayfs' own attributes (redirect, metacopy, origin, opaque) would change what the
        # container sees from what the layer says: only whiteouts make them, never a layer's headers
        if key.startswith("SCHILY.xattr.") and not name.startswith(OVERLAY_XATTR_PREFIX):
            out.append((name, value.encode("utf-8", "surrogateescape")))
    return out


def _set_xattrs(dir_fd: int, name: str, attrs: list[tuple[str, bytes]]) -> None:
    for key, value in attrs:
        try:
            os.setxattr(safefs.entry_path(dir_fd, name), key, value, follow_symlinks=False)
        except OSError as e:
            # Filesystems without the namespace (or unprivileged trusted.*): skip, like
            # Docker does for EOPNOTSUPP on security.* labels.
            if e.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                continue
            raise


def _is_plain_file(member: tarfile.TarInfo) -> bool:
    """A regular file whose archive data is exactly its content (not sparse)."""
    return member.isreg() and member.type != tarfile.GNUTYPE_SPARSE and member.sparse is None


def _whiteout_target(member: tarfile.TarInfo, base: str) -> str:
    """The name ``.wh.NAME`` deletes; containerd's check (archive/tar.go: "invalid whiteout name")
    that it is an entry of the whiteout's own directory, not the directory or its parent."""
    name = base[len(WHITEOUT_PREFIX) :]
    if name in ("", ".", "..") or "/" in name:
        raise InvalidArgument(f"invalid layer: invalid whiteout name {member.name!r}")
    return name


class _Tree:
    """The layer directory being written, only through directory fds (see safefs.py): no member
    can make a later operation follow a symlink, in the layer or out of it."""

    def __init__(self, dest: Path, split: SplitRecorder | None, *, layer: bool = True) -> None:
        self.dest = dest
        self.split = split
        self.layer = layer  # False: plain files (a build context): no whiteouts, no device nodes
        self.size = 0
        self.dirs: list[tuple[str, tarfile.TarInfo]] = []  # metadata set last (see finish)
        self.opaque: list[str] = []
        self.root = safefs.open_root(dest)
        self.cache = safefs.DirCache(self.root)

    def __enter__(self) -> _Tree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cache.close()
        os.close(self.root)

    def _parent(self, rel: str) -> int:
        """The fd of ``rel``'s directory, made (0755) where missing; never through a symlink."""
        try:
            return self.cache.open(posixpath.dirname(rel), create=True)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _walk_error(rel, e) from e
            raise

    def _remove(self, dir_fd: int, rel: str, name: str, *, keep_dir: bool) -> bool:
        """Clear the way for ``rel`` (``name`` in ``dir_fd``); True when a directory is kept."""
        st = safefs.lstat_at(dir_fd, name)
        if st is None:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        if self.split is not None:
            self.split.replacing(rel, self.dest)  # may move the payloads away first
            st = safefs.lstat_at(dir_fd, name)
        if st is not None:
            safefs.rmtree_at(dir_fd, name)  # a directory with all it holds, or the entry itself
        return False

    def add(self, tf: tarfile.TarFile, member: tarfile.TarInfo, rel: str) -> None:
        if rel == "":
            if member.isdir():
                self.dirs.append(("", member))
            return
        base = posixpath.basename(rel)
        if self.layer and base.startswith(WHITEOUT_PREFIX):
            self._whiteout(member, rel, base)
            return
        pfd = self._parent(rel)
        if member.isdir():
            if not self._remove(pfd, rel, base, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=pfd)
            self.dirs.append((rel, member))
            _chown(base, member.uid, member.gid, pfd)
            _set_xattrs(pfd, base, _xattrs(member))
            return
        self._remove(pfd, rel, base, keep_dir=False)
        if member.isreg():
            self._file(tf, member, pfd, base)
        elif member.islnk():
            self._hardlink(member, rel, pfd, base)  # shares the target's metadata and size
        elif self._special(member, pfd, base):
            _chown(base, member.uid, member.gid, pfd)
            if not member.issym():
                safefs.chmod_at(pfd, base, member.mode & 0o7777)
            _set_xattrs(pfd, base, _xattrs(member))
            os.utime(base, (member.mtime, member.mtime), dir_fd=pfd, follow_symlinks=False)

    def _whiteout(self, member: tarfile.TarInfo, rel: str, base: str) -> None:
        pfd = self._parent(rel)
        if base == WHITEOUT_OPAQUE:
            self.opaque.append(posixpath.dirname(rel))
            return
        if base.startswith(WHITEOUT_META_PREFIX):
            return  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): dropped
        name = _whiteout_target(member, base)
        target = posixpath.join(posixpath.dirname(rel), name)
        self._remove(pfd, target, name, keep_dir=False)
        try:
            os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=pfd)
        except PermissionError as e:
            raise SystemError_(f"cannot create whiteout {self.dest / target}: {e.strerror} (needs root)") from e
        _chown(name, 0, 0, pfd)

    def _file(self, tf: tarfile.TarFile, member: tarfile.TarInfo, pfd: int, base: str) -> None:
        src = tf.extractfile(member)
        assert src is not None
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
            out.flush()
            _chown(fd, member.uid, member.gid)
            os.chmod(fd, member.mode & 0o7777)
            _set_xattrs(pfd, base, _xattrs(member))
            os.utime(fd, (member.mtime, member.mtime))
        self.size += member.size

    def _hardlink(self, member: tarfile.TarInfo, rel: str, pfd: int, base: str) -> None:
        """A hardlink to an earlier member: inside the layer, not through a symlink, not a directory."""
        target_rel = _clean_name(member.linkname)
        if target_rel == "":
            raise InvalidArgument(f"invalid layer: hardlink {rel!r} to the root")
        try:
            tfd = safefs.open_dir(self.root, posixpath.dirname(target_rel))
        except FileNotFoundError:
            raise InvalidArgument(f"invalid layer: hardlink {rel!r} to missing {member.linkname!r}") from None
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR):
                raise _walk_error(target_rel, e) from e
            raise
        try:
            tname = posixpath.basename(target_rel)
            st = safefs.lstat_at(tfd, tname)
            if st is None:
                raise InvalidArgument(f"invalid layer: hardlink {rel!r} to missing {member.linkname!r}")
            if stat.S_ISDIR(st.st_mode):
                raise InvalidArgument(f"invalid layer: hardlink {rel!r} to directory {member.linkname!r}")
            os.link(tname, base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _special(self, member: tarfile.TarInfo, pfd: int, base: str) -> bool:
        """Make a symlink, device or fifo; False when it is not made (skipped)."""
        if member.issym():
            os.symlink(member.linkname, base, dir_fd=pfd)
            self.size += len(member.linkname.encode())
        elif (member.ischr() or member.isblk()) and not self.layer:
            return False
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            try:
                os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=pfd)
            except PermissionError:
                if os.geteuid() == 0:
                    raise
                return False  # unprivileged: device nodes cannot be made; skip them
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=pfd)
        else:
            return False  # contiguous files etc.: not representable
        return True

    def finish(self) -> None:
        """Opaque marks, then directory modes and times, deepest first so that setting them does
        not disturb a parent's mtime. Each directory is opened again from the root without
        following a symlink; one a later member replaced (by a symlink or anything) is skipped."""
        for rel in self.opaque:
            fd = self._reopen(rel)
            if fd is not None:
                try:
                    os.setxattr(fd, OPAQUE_XATTR, b"y")
                except PermissionError as e:
                    raise SystemError_(f"cannot mark {self.dest / rel} opaque: {e.strerror} (needs root)") from e
        for rel, member in sorted(self.dirs, key=lambda item: item[0].count("/") + bool(item[0]), reverse=True):
            fd = self._reopen(rel)
            if fd is not None:
                os.chmod(fd, member.mode & 0o7777)
                os.utime(fd, (member.mtime, member.mtime))

    def _reopen(self, rel: str) -> int | None:
        try:
            return self.cache.open(rel)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT):
                return None
            raise


def _payload(member: tarfile.TarInfo, rel: str) -> tuple[int, int, str] | None:
    """What the tar-split records as a reference: a plain file's data, written to ``rel``."""
    extracted = rel != "" and not posixpath.basename(rel).startswith(WHITEOUT_PREFIX)
    if extracted and _is_plain_file(member) and member.size > 0:
        return (member.offset_data, member.size, rel)
    return None


def extract_layer(stream: _Readable, dest: Path, *, split_path: Path | None = None) -> ExtractResult:
    """Extract a (possibly compressed) layer tar into the existing empty directory ``dest``.

    With ``split_path``, the tar-split needed to rebuild the original tar is written there
    (see tarsplit.py); it lives next to ``dest``."""
    reader = HashingReader(decompressed(stream))
    split = SplitRecorder(reader, split_path) if split_path is not None else None
    try:
        with _Tree(dest, split) as tree:
            _extract_members(split if split is not None else reader, tree)
            if split is not None:
                split.end_of_members()
                split.drain()
                split.finish()
                split = None
            else:
                reader.drain()
            tree.finish()
    except (EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error) as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    finally:
        if split is not None:
            split.abort()
    return ExtractResult(diff_id=reader.digest(), size=tree.size, tar_size=reader.size)


def extract_plain(stream: _Readable, dest: Path) -> None:
    """Extract a (possibly compressed) tar of plain files, a build context, into the existing
    directory ``dest`` as safely as a layer (nothing outside ``dest``, links resolved inside it),
    with no layer semantics: ``.wh.*`` names are ordinary files and device nodes are skipped."""
    reader = decompressed(stream)
    try:
        with _Tree(dest, None, layer=False) as tree:
            _extract_members(reader, tree)
            while reader.read(_CHUNK):
                pass
            tree.finish()
    except (EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error) as e:
        raise InvalidArgument(f"invalid build context tar: {e}") from e


def _extract_members(source: _Readable, tree: _Tree) -> None:
    try:
        tf = tarfile.open(fileobj=source, mode="r|", errorlevel=2)  # type: ignore[call-overload]
    except (tarfile.TarError, OSError) as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    try:
        for member in tf:
            rel = _clean_name(member.name)
            if tree.split is not None:
                tree.split.member(tf.offset, _payload(member, rel))
            tree.add(tf, member, rel)
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    finally:
        tf.close()
