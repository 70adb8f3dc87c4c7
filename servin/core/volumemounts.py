"""What a container's volumes need on the host at its start, as dockerd's MountPoint.Setup
(daemon/volume/mounts/mounts.go): a local volume that is a mount (type/device/o options) is mounted
on its _data directory while containers use it (daemon/volume/local/local_unix.go: mounted for the
first user, unmounted when the last one is gone), and a volume's subpath is resolved on the host
as moby's safepath does: symlinks followed, refused when they lead out of the volume, missing is
dockerd's 404. The supervisor then binds the resolved path, resolving it again inside the volume
(native/inroot.h), so a symlink swapped in meanwhile still cannot lead out of it."""

from __future__ import annotations

import errno
import logging
import os
import threading
from dataclasses import replace
from typing import Protocol

from servin import errors
from servin.core.model import Container, MountPoint

log = logging.getLogger(__name__)


class VolumeMounter(Protocol):
    """The host's mount table, for volumes (runtime/volumemount.py)."""

    def mount(self, device: str, target: str, fstype: str, options: str) -> None: ...

    def unmount(self, target: str) -> None: ...

    def mounted(self, target: str) -> bool: ...


def resolve_subpath(base: str, subpath: str) -> str:
    """moby's safepath evaluatePath: `subpath` of the volume at `base` with its symlinks followed,
    relative to the resolved base ("" for the volume itself)."""
    try:
        real_base = os.path.realpath(base, strict=True)
    except OSError as exc:
        raise _unresolved("base directory", base, exc) from None
    combined = os.path.normpath(os.path.join(real_base, subpath))
    try:
        resolved = os.path.realpath(combined, strict=True)
    except OSError as exc:
        raise _unresolved("combined path", combined, exc) from None
    rel = os.path.relpath(resolved, real_base)
    if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
        raise errors.InvalidArgument(f"path concatenation escapes the base directory, base: {real_base}, "
                                     f"subpath: {subpath}")
    return "" if rel == "." else rel


def _unresolved(what: str, path: str, exc: OSError) -> errors.ServinError:
    """Go's filepath.EvalSymlinks failing: a missing path is safepath's ErrNotAccessible (404) around
    the *PathError of the lstat; anything else is wrapped as safepath does (500)."""
    reason = (exc.strerror or str(exc)).lower()
    if exc.errno == errno.ENOENT:
        return errors.NotFound(f"cannot access path {path}: lstat {exc.filename or path}: {reason}")
    cause = reason if exc.errno == errno.ENOTDIR else f"lstat {exc.filename or path}: {reason}"  # Go: a bare ENOTDIR
    return errors.SystemError_(f'error while resolving symlinks in {what} "{path}": {cause}')


class VolumeMounts:
    """The volumes that are mounts, mounted while a container uses them; users are container ids."""

    def __init__(self, mounter: VolumeMounter | None) -> None:
        self.mounter = mounter
        self._lock = threading.Lock()
        self._users: dict[str, set[str]] = {}  # a volume's _data -> the containers using it
        self._of: dict[str, set[str]] = {}  # a container -> the _data directories it holds

    def reclaim(self, data_dirs: list[str]) -> None:
        """Daemon start: what a daemon killed while containers ran left mounted (dockerd's local
        driver unmounts them too); re-attached containers take their volumes again (`take`)."""
        if self.mounter is None:
            return
        for d in data_dirs:
            try:
                if self.mounter.mounted(d):
                    self.mounter.unmount(d)
            except errors.ServinError as exc:
                log.warning("volume left mounted at %s: %s", d, exc.message)

    def take(self, c: Container) -> tuple[MountPoint, ...]:
        """At start: c's volumes that are mounts mounted (for c), and its mount points with every
        volume subpath resolved. Blocking (mounts, lstat): call it in a thread."""
        self.hold(c)
        try:
            return tuple(replace(mp, subpath=resolve_subpath(mp.source, mp.subpath))
                         if mp.type == "volume" and mp.subpath else mp for mp in c.mount_points)
        except BaseException:
            self.release(c.id)
            raise

    def hold(self, c: Container) -> None:
        """c's volumes that are mounts mounted for c (a container re-attached at daemon start)."""
        try:
            for mp in c.mount_points:
                if mp.type == "volume" and mp.fstype:
                    self._hold(c.id, mp)
        except BaseException:
            self.release(c.id)
            raise

    def _hold(self, cid: str, mp: MountPoint) -> None:
        if self.mounter is None:
            raise errors.NotImplementedYet(f"volume {mp.name} is a mount, and this engine mounts no volumes")
        with self._lock:
            users = self._users.setdefault(mp.source, set())
            if not users:
                try:
                    self.mounter.mount(mp.device, mp.source, mp.fstype, ",".join(mp.options))
                except errors.ServinError as exc:
                    del self._users[mp.source]
                    raise errors.SystemError_(f"error while mounting volume '{mp.source}': {exc.message}") from None
            users.add(cid)
            self._of.setdefault(cid, set()).add(mp.source)

    def release(self, cid: str) -> None:
        """c is gone (exited, failed to start, removed): volumes nobody else uses are unmounted."""
        with self._lock:
            for d in self._of.pop(cid, set()):
                users = self._users.get(d, set())
                users.discard(cid)
                if not users:
                    self._users.pop(d, None)
                    self._unmount(d)

    def release_all(self) -> None:
        """Daemon stop: running containers keep their binds; the host keeps no volume mounted."""
        with self._lock:
            for d in self._users:
                self._unmount(d)
            self._users.clear()
            self._of.clear()

    def _unmount(self, d: str) -> None:
        assert self.mounter is not None
        try:
            self.mounter.unmount(d)
        except errors.ServinError as exc:
            log.warning("unmounting volume %s: %s", d, exc.message)
