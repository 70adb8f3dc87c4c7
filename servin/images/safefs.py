"""Writing inside a directory tree that must never be left: directory fds, no symlink followed.

Everything is addressed as (directory fd, one name). Directories are opened one component at a time
from a root fd with ``O_NOFOLLOW | O_DIRECTORY``, so a symlink anywhere on the way (or a file where
a directory should be) stops the walk instead of leading out of the tree:

- :func:`open_dir` opens ``a/b/c`` below a root fd, optionally creating what is missing; it raises
  ``OSError(ELOOP)`` at a symlink, ``NotADirectoryError`` at anything else that is not a directory,
  ``FileNotFoundError`` at a missing component (without ``create``).
- :class:`DirCache` keeps the last directory opened, for the entries that follow in it.
- :func:`lstat_at`, :func:`remove_at`, :func:`chmod_at` and :func:`entry_path` act on one entry of a
  directory fd and never follow it when it is a symlink.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def open_root(path: str | Path) -> int:
    """An fd of the tree's root directory (refused when ``path`` itself is a symlink)."""
    return os.open(path, DIR_FLAGS)


def _check_name(name: str) -> None:
    if name in ("", ".", "..") or "/" in name:
        raise ValueError(f"unsafe path component {name!r}")


def open_child(dir_fd: int, name: str, *, create: bool = False, mode: int = 0o755) -> int:
    """The directory ``name`` in ``dir_fd`` (made with ``mode`` when missing and ``create``)."""
    _check_name(name)
    try:
        return os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except NotADirectoryError:
        st = lstat_at(dir_fd, name)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise OSError(errno.ELOOP, "symbolic link in path", name) from None
        raise
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass  # made meanwhile: opened (and checked) below
    return open_child(dir_fd, name)


def open_dir(root_fd: int, rel: str, *, create: bool = False, mode: int = 0o755) -> int:
    """A new fd of the directory ``rel`` (slash-separated, relative, normalised) below ``root_fd``;
    ``""`` is the root itself. The caller closes it."""
    fd = os.dup(root_fd)
    if not rel:
        return fd
    try:
        for name in rel.split("/"):
            child = open_child(fd, name, create=create, mode=mode)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


class DirCache:
    """Directories below a root fd, opened with :func:`open_dir`; the last one stays open, so the
    entries that follow in the same directory cost no walk. Close it when done."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._rel: str | None = None
        self._fd = -1

    def open(self, rel: str, *, create: bool = False, mode: int = 0o755) -> int:
        """The fd of directory ``rel``: valid until the next call or :meth:`close`; do not close it.
        Opening the root (``""``) drops the cached directory too, so that an entry the caller then
        removes from the root can never be a directory still held here."""
        if not rel:
            self.close()
            return self.root_fd
        if rel != self._rel:
            self.close()
            self._fd = open_dir(self.root_fd, rel, create=create, mode=mode)
            self._rel = rel
        return self._fd

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        self._rel, self._fd = None, -1


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """The entry's own lstat, or None when it does not exist."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str, st: os.stat_result) -> None:
    """Remove the entry ``name`` (``st``: its lstat), a directory with all it holds; a symlink is
    removed itself, never what it points to."""
    _check_name(name)
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows a symlink
    else:
        os.unlink(name, dir_fd=dir_fd)


def entry_path(dir_fd: int, name: str) -> str:
    """A path naming exactly the entry ``name`` of ``dir_fd`` (through the kernel's /proc/self/fd
    link to the directory), for calls without a dir_fd parameter (setxattr); pass
    ``follow_symlinks=False`` so a symlink entry is not followed either."""
    _check_name(name)
    return f"/proc/self/fd/{dir_fd}/{name}"


def chmod_at(dir_fd: int, name: str, mode: int) -> None:
    """chmod the entry ``name`` itself (not a symlink: Linux has no mode on those)."""
    try:
        os.chmod(name, mode, dir_fd=dir_fd, follow_symlinks=False)
        return
    except (NotImplementedError, ValueError):
        pass  # a libc without fchmodat(AT_SYMLINK_NOFOLLOW): chmod through an O_PATH fd
    except OSError as e:
        if e.errno not in (errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            raise OSError(errno.ELOOP, "cannot chmod a symbolic link", name)
        os.chmod(f"/proc/self/fd/{fd}", mode)
    finally:
        os.close(fd)
