"""Host-side mount and namespace syscalls (through the cffi extension servin._native).

The daemon never calls these on its own process for namespaces (see ARCHITECTURE.md, decision 4):
they are for kernel tests and helper processes. Each raises OSError with the errno.
"""

from __future__ import annotations

import os
from pathlib import Path

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MNT_DETACH = 0x2

StrPath = str | os.PathLike[str]


def _lib():  # noqa: ANN202 - imported lazily so pure code can import this module without the build
    from servin._native import ffi, lib

    return ffi, lib


def _c(ffi, s: StrPath | bytes | None):  # noqa: ANN001, ANN202
    if s is None:
        return ffi.NULL
    return os.fsencode(s)


def _check(rc: int, *paths: StrPath | bytes | None) -> None:
    if rc < 0:
        err = -rc
        named = [p for p in paths if p is not None]
        if named:
            raise OSError(err, os.strerror(err), os.fsdecode(named[0]))
        raise OSError(err, os.strerror(err))


def mount(
    source: StrPath | None, target: StrPath, fstype: str | None = None, flags: int = 0, data: str | None = None
) -> None:
    ffi, lib = _lib()
    _check(lib.servin_mount(_c(ffi, source), _c(ffi, target), _c(ffi, fstype), flags, _c(ffi, data)), target)


def umount(target: StrPath, flags: int = 0) -> None:
    ffi, lib = _lib()
    _check(lib.servin_umount2(_c(ffi, target), flags), target)


def pivot_root(new_root: StrPath, put_old: StrPath) -> None:
    ffi, lib = _lib()
    _check(lib.servin_pivot_root(_c(ffi, new_root), _c(ffi, put_old)), new_root)


def unshare(flags: int) -> None:
    _, lib = _lib()
    _check(lib.servin_unshare(flags))


def setns(fd: int, nstype: int = 0) -> None:
    _, lib = _lib()
    _check(lib.servin_setns(fd, nstype))


def sethostname(name: str) -> None:
    ffi, lib = _lib()
    b = name.encode()
    _check(lib.servin_sethostname(b, len(b)))


def mknod(path: StrPath, mode: int, major: int, minor: int) -> None:
    ffi, lib = _lib()
    _check(lib.servin_mknod(_c(ffi, path), mode, major, minor), path)


# what open_in_root makes of a missing path (native/inroot.h, enum inroot_make)
IN_ROOT_OPEN, IN_ROOT_DIR, IN_ROOT_FILE = 0, 1, 2


def open_in_root(root_fd: int, path: str, make: int = IN_ROOT_OPEN) -> int:
    """An O_PATH fd of `path` inside the directory `root_fd`, made first if missing (a directory
    with its parents, or an empty file); symlinks are followed inside that root only, never out of
    it (the supervisor's own resolution, native/inroot.h). Mount on it as fd_path(fd)."""
    ffi, lib = _lib()
    rc = lib.servin_inroot_resolve(root_fd, path.encode(), make)
    _check(rc, path)
    return rc


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def is_mountpoint(path: StrPath) -> bool:
    """Whether `path` is a mount point in this process's mount namespace (per /proc/self/mountinfo)."""
    want = os.path.realpath(path)
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mp = line.split()[4].encode().decode("unicode_escape")
        if mp == want:
            return True
    return False
