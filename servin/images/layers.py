"""Layer tars → overlay-format directory trees, hashed while they stream.

The diff_id of a layer is the sha256 of its *uncompressed* tar stream; compressed input (gzip, bzip2,
xz) is detected by its magic bytes. Extraction preserves numeric ownership, modes (setuid included),
mtimes, symlinks, hardlinks, device nodes, fifos and PAX xattrs, and turns AUFS-style whiteouts into
what overlayfs understands: ``.wh.NAME`` → a 0:0 character device ``NAME``; ``.wh..wh..opq`` → the
xattr ``trusted.overlay.opaque=y`` on the directory. Paths that would escape the root are refused.
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
from servin.images.tarsplit import SplitRecorder

WHITEOUT_PREFIX = ".wh."
WHITEOUT_OPAQUE = ".wh..wh..opq"
WHITEOUT_META_PREFIX = ".wh..wh."
OPAQUE_XATTR = "trusted.overlay.opaque"
_CHUNK = 1 << 20


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
    if norm.startswith("..") or norm.startswith("/"):
        raise InvalidArgument(f"invalid layer: path {name!r} escapes the layer root")
    return "" if norm == "." else norm


def _check_parents(root: Path, rel: str) -> None:
    """Refuse to write through a symlink (or a non-directory) planted by an earlier member."""
    cur = root
    for part in rel.split("/")[:-1]:
        cur = cur / part
        try:
            st = os.lstat(cur)
        except FileNotFoundError:
            os.mkdir(cur, 0o755)
            continue
        if stat.S_ISLNK(st.st_mode):
            raise InvalidArgument(f"invalid layer: path {rel!r} goes through a symlink")
        if not stat.S_ISDIR(st.st_mode):
            raise InvalidArgument(f"invalid layer: parent of {rel!r} is not a directory")


def _remove_existing(path: Path, keep_dir: bool) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        if keep_dir:
            return
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _lchown(path: Path, uid: int, gid: int) -> None:
    try:
        os.lchown(path, uid, gid)
    except PermissionError:
        if os.geteuid() == 0:
            raise
        # Unprivileged (tests): keep our own ownership.


def _xattrs(member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
    out = []
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            out.append((key[len("SCHILY.xattr.") :], value.encode("utf-8", "surrogateescape")))
    return out


def _set_xattrs(path: Path, attrs: list[tuple[str, bytes]]) -> None:
    for name, value in attrs:
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError as e:
            # Filesystems without the namespace (or unprivileged trusted.*): skip, like
            # Docker does for EOPNOTSUPP on security.* labels.
            if e.errno in (errno.ENOTSUP, errno.EPERM, errno.EACCES):
                continue
            raise


def _mknod_whiteout(path: Path) -> None:
    try:
        os.mknod(path, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    except PermissionError as e:
        raise SystemError_(f"cannot create whiteout {path}: {e.strerror} (needs root)") from e
    _lchown(path, 0, 0)


def _is_plain_file(member: tarfile.TarInfo) -> bool:
    """A regular file whose archive data is exactly its content (not sparse)."""
    return member.isreg() and member.type != tarfile.GNUTYPE_SPARSE and member.sparse is None


def extract_layer(stream: _Readable, dest: Path, *, split_path: Path | None = None) -> ExtractResult:
    """Extract a (possibly compressed) layer tar into the existing empty directory ``dest``.

    With ``split_path``, the tar-split needed to rebuild the original tar is written there
    (see tarsplit.py); it lives next to ``dest``."""
    reader = HashingReader(decompressed(stream))
    split = SplitRecorder(reader, split_path) if split_path is not None else None
    source: _Readable = split if split is not None else reader
    size = 0
    dirs: list[tuple[Path, tarfile.TarInfo]] = []
    opaque_dirs: list[Path] = []

    def remove_existing(path: Path, keep_dir: bool) -> None:
        if split is not None and not (keep_dir and path.is_dir() and not path.is_symlink()):
            split.replacing(path.relative_to(dest).as_posix(), dest)
        _remove_existing(path, keep_dir)

    try:
        tf = tarfile.open(fileobj=source, mode="r|", errorlevel=2)  # type: ignore[call-overload]
    except (tarfile.TarError, EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error, OSError) as e:
        if split is not None:
            split.abort()
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    try:
        for member in tf:
            rel = _clean_name(member.name)
            if split is not None:
                extracted = rel != "" and not posixpath.basename(rel).startswith(WHITEOUT_PREFIX)
                payload = extracted and _is_plain_file(member) and member.size > 0
                split.member(tf.offset, (member.offset_data, member.size, rel) if payload else None)
            if rel == "":
                if member.isdir():
                    dirs.append((dest, member))
                continue
            _check_parents(dest, rel)
            path = dest / rel
            base = posixpath.basename(rel)
            parent = path.parent

            if base.startswith(WHITEOUT_PREFIX):
                if base == WHITEOUT_OPAQUE:
                    opaque_dirs.append(parent)
                elif base.startswith(WHITEOUT_META_PREFIX):
                    pass  # other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): dropped
                else:
                    target = parent / base[len(WHITEOUT_PREFIX) :]
                    remove_existing(target, keep_dir=False)
                    _mknod_whiteout(target)
                continue

            if member.isdir():
                remove_existing(path, keep_dir=True)
                if not path.is_dir():
                    os.mkdir(path, 0o700)
                dirs.append((path, member))
                _lchown(path, member.uid, member.gid)
                _set_xattrs(path, _xattrs(member))
                continue

            remove_existing(path, keep_dir=False)
            if member.isreg():
                src = tf.extractfile(member)
                assert src is not None
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
                size += member.size
            elif member.issym():
                os.symlink(member.linkname, path)
                size += len(member.linkname.encode())
            elif member.islnk():
                target_rel = _clean_name(member.linkname)
                if target_rel == "":
                    raise InvalidArgument(f"invalid layer: hardlink {rel!r} to the root")
                _check_parents(dest, target_rel)
                target = dest / target_rel
                if not target.exists() and not target.is_symlink():
                    raise InvalidArgument(f"invalid layer: hardlink {rel!r} to missing {member.linkname!r}")
                os.link(target, path, follow_symlinks=False)
                continue  # shares the target's metadata and size
            elif member.ischr() or member.isblk():
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                try:
                    os.mknod(path, kind | 0o600, os.makedev(member.devmajor, member.devminor))
                except PermissionError:
                    if os.geteuid() == 0:
                        raise
                    continue  # unprivileged: device nodes cannot be made; skip them
            elif member.isfifo():
                os.mkfifo(path, 0o600)
            else:
                continue  # contiguous files etc.: not representable

            _lchown(path, member.uid, member.gid)
            if not member.issym():
                os.chmod(path, member.mode & 0o7777)
            _set_xattrs(path, _xattrs(member))
            os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
        if split is not None:
            split.end_of_members()
            split.drain()
            split.finish()
            split = None
        else:
            reader.drain()
    except tarfile.TarError as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    except (EOFError, gzip.BadGzipFile, lzma.LZMAError, zlib.error) as e:
        raise InvalidArgument(f"invalid layer tar: {e}") from e
    finally:
        if split is not None:
            split.abort()
        tf.close()

    for d in opaque_dirs:
        try:
            os.setxattr(d, OPAQUE_XATTR, b"y", follow_symlinks=False)
        except PermissionError as e:
            raise SystemError_(f"cannot mark {d} opaque: {e.strerror} (needs root)") from e
    # Directory metadata last, deepest first, so creating children does not disturb mtimes.
    for path, member in sorted(dirs, key=lambda item: len(item[0].parts), reverse=True):
        os.chmod(path, member.mode & 0o7777)
        os.utime(path, (member.mtime, member.mtime), follow_symlinks=False)
    return ExtractResult(diff_id=reader.digest(), size=size, tar_size=reader.size)
