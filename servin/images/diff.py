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
running container cannot redirect them outside its layer. They walk without recursion, holding a
bounded number of fds (safefs.DirStack), and refuse a path of PATH_MAX bytes or more (a container
makes one with ``mkdir`` in a loop; dockerd's walk fails there too, and no layer may hold one) with
a clean ``TooDeep`` error.
"""

from __future__ import annotations

import enum
import os
import stat
import tarfile
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from servin import archive
from servin import safefs
from servin.images import union
from servin.images.layers import WHITEOUT_OPAQUE, WHITEOUT_PREFIX
from servin.images.union import OPAQUE_XATTR, is_whiteout

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


def _skip_init(path: str, in_lower: bool) -> bool:
    return not in_lower and path in INIT_PATHS


def changes(upper: Path, lowers: list[Path]) -> list[Change]:
    """The changes of ``upper`` over the union of ``lowers`` (top first)."""
    out: list[Change] = []
    fd = archive.open_dir(str(upper))
    walk = safefs.DirStack(fd)
    try:
        top = union.root(lowers)
        _drive(walk, _changes_in(walk, [], _listing(top), out, opaque=None))
    finally:
        walk.close()
        os.close(fd)
    return out


# The walks below are generators, driven by _drive without recursion: a generator yields
# (name, generator for that subdirectory); _drive enters the subdirectory (walk.push), runs the new
# generator to its end, comes back up (walk.pop) and resumes the one that yielded. The current
# directory is always walk.fd, read afresh (a DirStack may reopen a level under another fd).
_Walk = Generator[tuple[str, "_Walk"], None, None]


def _drive(walk: safefs.DirStack, top: _Walk) -> None:
    stack = [top]
    try:
        while stack:
            try:
                name, sub = next(stack[-1])
            except StopIteration:
                stack.pop()
                if stack:
                    walk.pop()
                continue
            walk.push(name)
            stack.append(sub)
    finally:
        for gen in stack:
            gen.close()


def _checked(path: str, what: str) -> str:
    """``path``, refused when no path of the host could hold it (dockerd's walk fails there too)."""
    if len(path) * 4 >= safefs.PATH_MAX and len(os.fsencode(path)) >= safefs.PATH_MAX:
        raise safefs.TooDeep(what)
    return path


_DIFF = "reading the container's changes"


def _listing(d: union.Entry | None) -> dict[str, union.Entry]:
    return union.listdir(d) if d is not None else {}


def _added(walk: safefs.DirStack, path: str, out: list[Change]) -> _Walk:
    for name, st in archive.scan_sorted(walk.fd):
        if is_whiteout(st):
            continue
        child = _checked(f"{path}/{name}", _DIFF)
        out.append(Change(child, Kind.ADDED))
        if stat.S_ISDIR(st.st_mode):
            yield name, _added(walk, child, out)


def _changes_in(walk: safefs.DirStack, parts: list[str], old: dict[str, union.Entry], out: list[Change], *,
                opaque: bool | None) -> _Walk:
    """Changes inside the directory ``parts`` (both in the upper dir and, as a dir, below), the
    upper dir's being walk.fd; ``old``: the lower view's entries there; ``opaque``: None to read it
    from the directory."""
    if opaque is None:
        opaque = _is_opaque(walk.fd)
    entries = dict(archive.scan_sorted(walk.fd))
    names = set(entries)
    if opaque:
        names |= set(old)  # an opaque dir hides every lower entry it does not hold
    for name in sorted(names, key=os.fsencode):
        cparts = [*parts, name]
        path = _checked("/" + "/".join(cparts), _DIFF)
        st = entries.get(name)
        in_lower = name in old
        if st is None or is_whiteout(st):
            if in_lower:
                out.append(Change(path, Kind.DELETED))
            continue
        if _skip_init(path, in_lower):
            continue
        old_entry = old.get(name)
        old_st = old_entry.st if old_entry is not None else None
        is_dir = stat.S_ISDIR(st.st_mode)
        if old_st is None and not (is_dir and path in _INIT_PARENTS):
            out.append(Change(path, Kind.ADDED))
            if is_dir:
                yield name, _added(walk, path, out)
            continue
        mark = len(out)
        modified = old_st is not None and stat_differs(old_st, st)
        if modified:
            out.append(Change(path, Kind.MODIFIED))
        if not is_dir:
            continue
        if old_entry is None:  # /etc made by the runtime: as if the image had it
            yield name, _changes_in(walk, cparts, {}, out, opaque=False)
        elif not old_entry.is_dir:  # a file replaced by a directory
            yield name, _added(walk, path, out)
        else:
            yield name, _changes_in(walk, cparts, union.listdir(old_entry), out, opaque=None)
        if not modified and len(out) > mark:
            out.insert(mark, Change(path, Kind.MODIFIED))


# ---------------------------------------------------------------------------- the layer tar


def write_layer(upper: Path, lowers: list[Path], out: BinaryIO) -> int:
    """The upper dir as a layer tar (AUFS whiteouts), runtime mount points left out; returns
    the number of entries (0: the container changed nothing, dockerd's empty layer)."""
    writer = archive.TreeWriter(out)
    fd = archive.open_dir(str(upper))
    walk = safefs.DirStack(fd)
    try:
        _drive(walk, _layer_in(writer, walk, [], lowers, None))
    finally:
        walk.close()
        os.close(fd)
    writer.close()
    return writer.count


_COMMIT = "writing the container's layer"


def _layer_in(writer: archive.TreeWriter, walk: safefs.DirStack, parts: list[str], lowers: list[Path],
              dir_st: os.stat_result | None) -> _Walk:
    """The entries of the directory ``parts`` (walk.fd; ``dir_st``: its lstat, None for the upper
    dir itself), after its ``.wh..wh..opq`` entry when it is opaque."""
    if dir_st is not None and _is_opaque(walk.fd):
        ti = tarfile.TarInfo("/".join(parts) + "/" + WHITEOUT_OPAQUE)
        ti.type, ti.mode, ti.size = tarfile.REGTYPE, stat.S_IMODE(dir_st.st_mode) & 0o777, 0
        ti.uid, ti.gid, ti.mtime = dir_st.st_uid, dir_st.st_gid, int(dir_st.st_mtime)
        writer.add_info(ti)
    for name, st in archive.scan_sorted(walk.fd):
        cparts = [*parts, name]
        path = _checked("/" + "/".join(cparts), _COMMIT)
        arcname = "/".join(cparts)
        if path in INIT_PATHS and union.entry(lowers, cparts) is None:
            continue
        if is_whiteout(st):
            ti = tarfile.TarInfo(("/".join(parts) + "/" if parts else "") + WHITEOUT_PREFIX + name)
            ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o600, 0
            ti.uid, ti.gid, ti.mtime = st.st_uid, st.st_gid, int(st.st_mtime)
            writer.add_info(ti)
            continue
        writer.add(arcname, name, st, dir_fd=walk.fd)
        if stat.S_ISDIR(st.st_mode):
            yield name, _layer_in(writer, walk, cparts, lowers, st)
