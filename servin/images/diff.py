"""A container's changes: its overlay upper dir compared with the image layers below it.

``changes`` gives what ``docker diff`` shows. dockerd 20.10 computes it by comparing the mounted
container layer with its mounted parent (``archive.ChangesDirs``); the same answer is computed here
from the upper dir and the lower layers without mounting anything:

* an entry only in the upper dir is added (A, 1), with everything under it;
* an entry in both is modified (C, 0) when its type, mode, owner or device differ, and for a
  non-directory also its size or mtime (whole seconds when either side has no nanoseconds);
* an overlay whiteout (a 0:0 character device) is a deletion (D, 2) of what it hides, and an
  opaque directory deletes every lower entry it does not itself hold;
* a directory holding any change is reported modified, before its contents.

Entries come depth first, siblings in byte order (Go's filepath.Walk order; dockerd itself emits
them in map order). The mount points the runtime creates in the upper dir when the image lacks
them (/etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, /sys, /dev, ...) are what dockerd keeps
in its "init layer" and are not changes; neither are they committed.

``write_layer`` writes the upper dir as a layer tar for ``docker commit``: whiteouts become
``.wh.<name>`` files and opaque directories get a ``.wh..wh..opq`` entry, as dockerd's overlay2
driver writes them. Both walk the upper dir with directory fds and never follow a symlink, so a
running container cannot redirect them outside its layer.
"""

from __future__ import annotations

import enum
import os
import stat
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from servin import archive
from servin.images import union
from servin.images.layers import OPAQUE_XATTR, WHITEOUT_OPAQUE, WHITEOUT_PREFIX

# Created by the runtime as mount points when the image lacks them (dockerd's init layer).
INIT_PATHS = frozenset({
    "/.dockerenv", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab",
    "/dev", "/proc", "/sys",
})
_INIT_PARENTS = frozenset({"/etc"})


class Kind(enum.IntEnum):
    MODIFIED = 0
    ADDED = 1
    DELETED = 2


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    kind: Kind


def is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


def _same_time(a: int, b: int) -> bool:
    """dockerd's sameFsTimeSpec: equal, or the same second when either has no nanoseconds."""
    return a == b or (a // 1_000_000_000 == b // 1_000_000_000 and (a % 1_000_000_000 == 0
                                                                  or b % 1_000_000_000 == 0))


def stat_differs(old: os.stat_result, new: os.stat_result) -> bool:
    """dockerd's statDifferent: directories compare mode and owner only."""
    if (old.st_mode != new.st_mode or old.st_uid != new.st_uid or old.st_gid != new.st_gid
            or old.st_rdev != new.st_rdev):
        return True
    if stat.S_ISDIR(old.st_mode):
        return False
    return not _same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size


class Lower:
    """The union of read-only layers (top first), looked up without following any symlink
    (images/union.py): what the upper dir is compared with."""

    def __init__(self, layers: list[Path]) -> None:
        self.layers = list(layers)

    def stat(self, parts: list[str]) -> os.stat_result | None:
        e = union.entry(self.layers, parts)
        return e.st if e is not None else None

    def children(self, parts: list[str]) -> set[str]:
        """Names the union shows inside the directory ``parts``."""
        e = union.entry(self.layers, parts)
        return set(union.listdir(e)) if e is not None else set()


def _skip_init(path: str, in_lower: bool) -> bool:
    return not in_lower and path in INIT_PATHS


def changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The changes of ``upper`` over the union of ``lowers`` (top first)."""
    lower = Lower(lowers)
    out: list[Change] = []
    fd = archive.open_dir(str(upper))
    try:
        _changes_in(fd, [], lower, lower.children([]), out, opaque=_is_opaque(fd))
    finally:
        os.close(fd)
    return out


def _added(fd: int, path: str, out: list[Change]) -> None:
    for name, st in archive.scan_sorted(fd):
        if is_whiteout(st):
            continue
        child = f"{path}/{name}"
        out.append(Change(child, Kind.ADDED))
        if stat.S_ISDIR(st.st_mode):
            sub = archive.open_dir(name, fd)
            try:
                _added(sub, child, out)
            finally:
                os.close(sub)


def _changes_in(fd: int, parts: list[str], lower: Lower, old_names: set[str], out: list[Change], *,
                opaque: bool) -> None:
    """Changes inside the directory ``parts`` (both in the upper dir and, as a dir, below)."""
    entries = dict(archive.scan_sorted(fd))
    names = set(entries)
    if opaque:
        names |= old_names  # an opaque dir hides every lower entry it does not hold
    for name in sorted(names, key=os.fsencode):
        cparts = [*parts, name]
        path = "/" + "/".join(cparts)
        st = entries.get(name)
        in_lower = name in old_names
        if st is None or is_whiteout(st):
            if in_lower:
                out.append(Change(path, Kind.DELETED))
            continue
        if _skip_init(path, in_lower):
            continue
        old = lower.stat(cparts) if in_lower else None
        is_dir = stat.S_ISDIR(st.st_mode)
        if old is None and not (is_dir and path in _INIT_PARENTS):
            out.append(Change(path, Kind.ADDED))
            if is_dir:
                sub = archive.open_dir(name, fd)
                try:
                    _added(sub, path, out)
                finally:
                    os.close(sub)
            continue
        mark = len(out)
        modified = old is not None and stat_differs(old, st)
        if modified:
            out.append(Change(path, Kind.MODIFIED))
        if not is_dir:
            continue
        sub = archive.open_dir(name, fd)
        try:
            if old is None:  # /etc made by the runtime: as if the image had it
                _changes_in(sub, cparts, lower, set(), out, opaque=False)
            elif not stat.S_ISDIR(old.st_mode):  # a file replaced by a directory
                _added(sub, path, out)
            else:
                _changes_in(sub, cparts, lower, lower.children(cparts), out, opaque=_is_opaque(sub))
        finally:
            os.close(sub)
        if not modified and len(out) > mark:
            out.insert(mark, Change(path, Kind.MODIFIED))


# ---------------------------------------------------------------------------- the layer tar


def write_layer(upper: Path, lowers: list[Path], out: BinaryIO) -> int:
    """The upper dir as a layer tar (AUFS whiteouts), runtime mount points left out; returns
    the number of entries (0: the container changed nothing, dockerd's empty layer)."""
    lower = Lower(lowers)
    writer = archive.TreeWriter(out)
    fd = archive.open_dir(str(upper))
    try:
        _layer_in(writer, fd, [], lower)
    finally:
        os.close(fd)
    writer.close()
    return writer.count


def _layer_in(writer: archive.TreeWriter, fd: int, parts: list[str], lower: Lower) -> None:
    for name, st in archive.scan_sorted(fd):
        cparts = [*parts, name]
        path = "/" + "/".join(cparts)
        arcname = "/".join(cparts)
        if path in INIT_PATHS and lower.stat(cparts) is None:
            continue
        if is_whiteout(st):
            ti = tarfile.TarInfo(("/".join(parts) + "/" if parts else "") + WHITEOUT_PREFIX + name)
            ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o600, 0
            ti.uid, ti.gid, ti.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
            writer.add_info(ti)
            continue
        writer.add(arcname, name, st, dir_fd=fd)
        if not stat.S_ISDIR(st.st_mode):
            continue
        sub = archive.open_dir(name, fd)
        try:
            if _is_opaque(sub):
                ti = tarfile.TarInfo(arcname + "/" + WHITEOUT_OPAQUE)
                ti.type, ti.mode, ti.size = tarfile.REGTYPE, stat.S_IMODE(st.st_mode) & 0o777, 0
                ti.uid, ti.gid, ti.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
                writer.add_info(ti)
            _layer_in(writer, sub, cparts, lower)
        finally:
            os.close(sub)
