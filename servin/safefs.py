"""Writing inside a directory tree that must never be left: directory fds, no symlink followed.

Everything is addressed as (directory fd, one name). Directories are opened one component at a time
from a root fd with ``O_NOFOLLOW | O_DIRECTORY``, so a symlink anywhere on the way (or a file where
a directory should be) stops the walk instead of leading out of the tree:

- :func:`open_dir` opens ``a/b/c`` below a root fd, optionally creating what is missing; it raises
  ``OSError(ELOOP)`` at a symlink, ``NotADirectoryError`` at anything else that is not a directory,
  ``FileNotFoundError`` at a missing component (without ``create``).
- :class:`DirCache` keeps the last directory opened (and the levels above it), for the entries
  that follow in it or near it.
- :func:`lstat_at`, :func:`rmtree_at`, :func:`chmod_at` and :func:`entry_path` act on one entry of a
  directory fd and never follow it when it is a symlink.
- :class:`DirStack` walks down and back up a tree of any depth without recursion and with a bounded
  number of fds; :func:`rmtree_at` and :func:`remove_tree` remove a tree with it (Python 3.11's
  ``shutil.rmtree`` and ``os.walk`` recurse once per level: a tree ~1,000 levels deep, which a
  container makes with ``mkdir`` in a loop, raises ``RecursionError``, and ``ignore_errors`` does
  not catch it). :class:`TooDeep` is the clean error of a walk that cannot go on (a path the host
  cannot address).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from servin.errors import SystemError_

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PATH_MAX = 4096  # bytes of a path the kernel takes, its NUL included
KEEP_FDS = 32  # directory fds a DirStack keeps open above the current one


class TooDeep(SystemError_):
    """A directory tree deeper than an operation can follow (a path of PATH_MAX bytes or more):
    the clean failure of a walk, never a RecursionError."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: directory tree too deep (a path longer than {PATH_MAX - 1} bytes)")


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
    """Directories below a root fd, opened one component at a time with ``O_NOFOLLOW`` as
    :func:`open_dir` does. The one opened last stays open with the levels above it (a
    :class:`DirStack`), and the next is reached from where the two paths part: the entries of a
    tar, which lists parents first, cost one open per new directory however deep the tree, and so
    does coming back up. Close it when done."""

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd
        self._walk: DirStack | None = None
        self._rel = ""  # the path of the directory the walk is in

    def open(self, rel: str, *, create: bool = False, mode: int = 0o755) -> int:
        """The fd of directory ``rel``: valid until the next call or :meth:`close`; do not close it.
        Only ``rel`` and the directories above it stay held: the entries the caller then changes
        in it can never be a directory held here. Opening the root (``""``) drops them all."""
        if not rel:
            self.close()
            return self.root_fd
        if rel == self._rel:
            assert self._walk is not None
            return self._walk.fd
        if self._walk is None:
            self._walk = DirStack(self.root_fd)
        walk = self._walk
        try:
            if rel.startswith(self._rel + "/") or not self._rel:  # below: on from here
                common = walk.depth
            elif self._rel.startswith(rel + "/"):  # above: back up
                common = rel.count("/") + 1
            else:
                held, parts = walk.names, rel.split("/")
                common = 0
                while common < min(len(held), len(parts)) and held[common] == parts[common]:
                    common += 1
            while walk.depth > common:
                walk.pop()
            for name in rel.split("/")[common:]:
                walk.push(name, create=create, mode=mode)
        except BaseException:
            self.close()
            raise
        self._rel = rel
        return walk.fd

    def close(self) -> None:
        if self._walk is not None:
            self._walk.close()
        self._walk, self._rel = None, ""


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """The entry's own lstat, or None when it does not exist."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


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


# ---------------------------------------------------------------------------- trees of any depth


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def mount_of(fd: int) -> tuple[int, int]:
    """The filesystem and the mount an fd is on: (st_dev, the mount's id, -1 without /proc). A bind
    mount of a directory of the same filesystem has the same st_dev and its own mount id."""
    dev = os.fstat(fd).st_dev
    try:
        with open(f"/proc/self/fdinfo/{fd}", "rb") as f:
            for line in f:
                if line.startswith(b"mnt_id:"):
                    return dev, int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return dev, -1


def is_mount_point(path: str | Path) -> bool:
    """Whether something is mounted on the directory ``path`` (a missing one is not)."""
    try:
        fd = os.open(path, DIR_FLAGS)
    except OSError:
        return False
    try:
        up = os.open("..", DIR_FLAGS, dir_fd=fd)
        try:
            return mount_of(fd) != mount_of(up)
        finally:
            os.close(up)
    finally:
        os.close(fd)


class DirStack:
    """The directories from a root fd down to the current one, entered one name at a time with
    ``O_NOFOLLOW``: a walk of any depth with no recursion and a bounded number of fds.

    :meth:`push` enters a subdirectory, :meth:`pop` goes back to the parent. The current directory
    and the ``keep`` levels above it stay open; a level whose fd was closed is opened again through
    ``..`` of its child and taken only if it is the directory walked through before (same
    ``st_dev``/``st_ino``); if something moved it meanwhile, it is walked to again by name from the
    nearest level still open, every level checked the same way, and if that fails too the walk stops
    with ``OSError(ESTALE)``. So no rename during the walk can lead it outside the root. The root fd
    stays the caller's; :meth:`close` closes the others."""

    def __init__(self, root_fd: int, *, keep: int = KEEP_FDS) -> None:
        self._fds = [root_fd]
        self._ids = [_ident(os.fstat(root_fd))]
        self._names: list[str] = []  # _names[i] leads from level i to level i + 1
        self._keep = max(keep, 1)

    @property
    def fd(self) -> int:
        """The current directory (valid until the next push, pop or close; do not close it)."""
        return self._fds[-1]

    @property
    def depth(self) -> int:
        return len(self._names)

    @property
    def names(self) -> tuple[str, ...]:
        """The names from the root to the current directory."""
        return tuple(self._names)

    def push(self, name: str, *, create: bool = False, mode: int = 0o755) -> os.stat_result:
        """Enter the subdirectory ``name`` (made with ``mode`` when missing and ``create``), as
        :func:`open_child`: ELOOP at a symlink, ENOTDIR at anything else; returns its fstat."""
        fd = open_child(self._fds[-1], name, create=create, mode=mode)
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fds.append(fd)
        self._ids.append(_ident(st))
        self._names.append(name)
        drop = len(self._fds) - 2 - self._keep
        if drop >= 1 and self._fds[drop] >= 0:
            os.close(self._fds[drop])
            self._fds[drop] = -1
        return st

    def pop(self) -> str:
        """Back to the parent directory; returns the name of the one left."""
        if not self._names:
            raise ValueError("at the root")
        fd = self._fds.pop()
        self._ids.pop()
        name = self._names.pop()
        try:
            if self._fds[-1] < 0:
                self._fds[-1] = self._reopen(fd)
        finally:
            os.close(fd)
        return name

    def _reopen(self, child_fd: int) -> int:
        """The fd of the current level again (its fd was closed), from ``child_fd`` (a directory
        just below it) through "..", or else by name from the nearest level still open."""
        want = self._ids[-1]
        try:
            up = os.open("..", DIR_FLAGS, dir_fd=child_fd)
        except OSError:
            up = -1
        if up >= 0:
            if _ident(os.fstat(up)) == want:
                return up
            os.close(up)
        top = len(self._fds) - 1
        base = max(i for i in range(top) if self._fds[i] >= 0)  # level 0 (the root) is always open
        fd = self._fds[base]
        for level in range(base + 1, top + 1):
            try:
                nxt = os.open(self._names[level - 1], DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise OSError(errno.ESTALE, f"directory moved during the walk: {exc.strerror}") from None
            finally:
                if level > base + 1:
                    os.close(fd)
            if _ident(os.fstat(nxt)) != self._ids[level]:
                os.close(nxt)
                raise OSError(errno.ESTALE, "directory moved during the walk")
            fd = nxt
        return fd

    def close(self) -> None:
        for fd in self._fds[1:]:
            if fd >= 0:
                os.close(fd)
        del self._fds[1:], self._ids[1:], self._names[:]


def _clear(dir_fd: int, failed: Callable[[OSError], None]) -> list[str]:
    """Unlink every non-directory in ``dir_fd``; returns the names of its subdirectories."""
    dirs: list[str] = []
    try:
        with os.scandir(dir_fd) as it:
            entries = list(it)
    except OSError as exc:
        failed(exc)
        return dirs
    for entry in entries:
        try:
            if entry.is_dir(follow_symlinks=False):  # d_type: no stat
                dirs.append(entry.name)
                continue
        except OSError:
            pass  # unknown type and gone or unreadable: the unlink tells
        try:
            os.unlink(entry.name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            dirs.append(entry.name)  # a directory took its place
        except OSError as exc:
            failed(exc)
    dirs.reverse()  # popped from the end: in the order the directory lists them
    return dirs


def rmtree_at(dir_fd: int, name: str, *, ignore_errors: bool = False) -> None:
    """Remove the entry ``name`` of ``dir_fd`` with everything below it, at any depth, never
    following a symlink (a symlink is removed itself) and never entering another mount (a directory
    something is mounted on is left, with EBUSY). Everything that can be removed is; then the
    first error is raised (none with ``ignore_errors``). A missing ``name`` is no error."""
    _check_name(name)
    errors: list[OSError] = []  # the first one only

    def failed(exc: OSError) -> None:
        if not errors:
            errors.append(exc)

    try:
        top = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            if ignore_errors:
                return
            raise
        try:  # not a directory (a symlink): the entry itself
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            pass
        except OSError:
            if not ignore_errors:
                raise
        return
    walk = DirStack(top)
    home = mount_of(top)
    try:
        pending = [_clear(top, failed)]  # per level, the subdirectories still to remove
        while pending:
            if pending[-1]:
                sub = pending[-1].pop()
                try:
                    walk.push(sub)
                except FileNotFoundError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
                        failed(exc)
                        continue
                    try:  # replaced by a non-directory meanwhile
                        os.unlink(sub, dir_fd=walk.fd)
                    except FileNotFoundError:
                        pass
                    except OSError as exc2:
                        failed(exc2)
                    continue
                if mount_of(walk.fd) != home:  # a mount below the tree: what is in it is not ours
                    failed(OSError(errno.EBUSY, "a mount point below the tree, left", sub))
                    walk.pop()
                    continue
                pending.append(_clear(walk.fd, failed))
                continue
            pending.pop()
            if walk.depth:
                sub = walk.pop()
                try:
                    os.rmdir(sub, dir_fd=walk.fd)
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    failed(exc)
    except OSError as exc:  # the walk cannot go on (ESTALE): what is left stays
        failed(exc)
    finally:
        walk.close()
        os.close(top)
    try:
        os.rmdir(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    except OSError as exc:
        failed(exc)
    if errors and not ignore_errors:
        raise errors[0]


def remove_tree(path: str | Path, *, ignore_errors: bool = False) -> None:
    """Remove ``path`` and everything below it, at any depth, never following a symlink below it
    (the path leading to it is the caller's, within the data root). A missing path is no error; of
    the errors met, the first is raised after everything removable is removed."""
    parent, name = os.path.split(os.fspath(path).rstrip("/"))
    try:
        pfd = os.open(parent or ".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError:
        if ignore_errors:
            return
        raise
    try:
        rmtree_at(pfd, name, ignore_errors=ignore_errors)
    finally:
        os.close(pfd)
