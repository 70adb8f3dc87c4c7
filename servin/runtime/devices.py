"""What containers are given of the host's /dev: device nodes for --device and --privileged (read as
runc's devices package reads them) and block device numbers for the blkio settings."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from collections.abc import Iterable
from typing import NamedTuple

from servin.errors import InvalidArgument

# runc's GetDevices skips these directories under /dev, and /dev/console
_SKIPPED_DIRS = {"pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"}


class HostDevice(NamedTuple):
    path: str  # where it goes in the container
    type: str  # c, b or p
    major: int
    minor: int
    file_mode: int  # permission bits
    uid: int
    gid: int
    permissions: str = "rwm"  # the device cgroup access


def from_path(path: str, permissions: str = "rwm") -> HostDevice | None:
    """The node at `path` (not followed), None when it is not a device node; OSError when missing."""
    st = os.lstat(path)
    kind = "c" if stat.S_ISCHR(st.st_mode) else "b" if stat.S_ISBLK(st.st_mode) else \
        "p" if stat.S_ISFIFO(st.st_mode) else None
    if kind is None:
        return None
    return HostDevice(path=path, type=kind, major=os.major(st.st_rdev), minor=os.minor(st.st_rdev),
                      file_mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, permissions=permissions)


def for_mapping(on_host: str, in_container: str, permissions: str) -> list[HostDevice]:
    """moby's DevicesFromPath: a symlink resolved, a node, or every node under a directory
    (its path in the container following the directory's); its error wording."""
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    try:
        dev = from_path(resolved, permissions)
    except OSError as exc:
        raise LookupError(f'error gathering device information while adding custom device "{on_host}": '
                          f"{os.strerror(exc.errno or 0).lower()}") from None
    if dev is not None:
        return [dev._replace(path=in_container)]
    found = []
    if os.path.isdir(resolved):
        for d, dirs, files in os.walk(resolved):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(d, name)
                try:
                    node = from_path(full, permissions)
                except OSError:
                    continue
                if node is not None:
                    found.append(node._replace(path=full.replace(resolved, in_container, 1)))
    if not found:
        raise LookupError(f'error gathering device information while adding custom device "{on_host}": '
                          "not a device node")
    return found


def host_devices(root: Path = Path("/dev")) -> list[HostDevice]:
    """Every device node under /dev but fifos and /dev/console (runc's HostDevices)."""
    out: list[HostDevice] = []
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return out
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            if e.name not in _SKIPPED_DIRS:
                out += host_devices(Path(e.path))
            continue
        if e.name == "console":
            continue
        try:
            dev = from_path(e.path)
        except OSError:
            continue
        if dev is not None and dev.type != "p":
            out.append(dev)
    return out


def block_numbers(paths: Iterable[str]) -> dict[str, tuple[int, int]]:
    """path → (major, minor) of each block device, as dockerd stats them at start."""
    out = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError as e:  # Go's wording: "stat /dev/nope: no such file or directory"
            raise InvalidArgument(f"stat {path}: {os.strerror(e.errno or 0).lower()}") from None
        if not stat.S_ISBLK(st.st_mode):
            raise InvalidArgument(f"{path} is not a block device")
        out[path] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return out
