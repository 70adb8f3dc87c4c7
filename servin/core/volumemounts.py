"""What a container's volumes need on the host at its start, as dockerd's MountPoint.Setup
(daemon/volume/mounts/mounts.go): a local volume that is a mount (type/device/o options) is mounted
on its _data directory while containers use it (daemon/volume/local/local_unix.go: mounted for the
first user, unmounted when the last one is gone), and a volume's subpath is resolved on the host
as moby's safepath does: symlinks followed, refused when they lead out of the volume, missing is
dockerd's 404. The supervisor then binds the resolved path, resolving it again inside the volume
(native/inroot.h), so a symlink swapped in meanwhile still cannot lead out of it."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Protocol

from servin import errors
from servin.core.model import Container, MountPoint

log = logging.getLogger(__name__)

_MOUNT_DATA_MAX = 4096  # mount(2) copies one page of data
IMAGE_SCRATCH = "image-root"  # in a container's bundle: where an image mount's layers are looked at


class VolumeMounter(Protocol):
    """The host's mount table, for volumes (runtime/volumemount.py)."""

    def mount(self, device: str, target: str, fstype: str, options: str) -> None: ...

    def unmount(self, target: str, *, detach: bool = False) -> None: ...

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
    """The volumes that are mounts, mounted while a container uses them; users are container ids.
    The books (users, what is mounted, the volumes a create is using) are kept under one short lock;
    mount(2) and umount(2), which may block on an unreachable server, run under a lock per volume."""

    def __init__(self, mounter: VolumeMounter | None) -> None:
        self.mounter = mounter
        self._lock = threading.Lock()
        self._users: dict[str, set[str]] = {}  # a volume's _data -> the containers using it
        self._of: dict[str, set[str]] = {}  # a container -> the _data directories it holds
        self._names: dict[str, str] = {}  # a volume's _data -> its name
        self._mounted: set[str] = set()  # the _data directories mounted (an unmount that failed included)
        self._dir_locks: dict[str, threading.Lock] = {}
        self._claims: dict[str, set[str]] = {}  # a create in progress -> the volume names it uses

    def claim(self, user: str, name: str) -> None:
        """A create uses the volume `name` until `unclaim`: it counts as in use (not removed under it)."""
        with self._lock:
            self._claims.setdefault(user, set()).add(name)

    def unclaim(self, user: str) -> None:
        with self._lock:
            self._claims.pop(user, None)

    def users_of(self, name: str) -> list[str]:
        """The containers (creates included) using the volume `name` right now, by container id."""
        with self._lock:
            found = {u for u, vols in self._claims.items() if name in vols}
            for d, users in self._users.items():
                if self._names.get(d) == name:
                    found.update(users)
        return sorted({u.partition("/")[0] for u in found})

    def _dir_lock(self, d: str) -> threading.Lock:
        with self._lock:
            return self._dir_locks.setdefault(d, threading.Lock())

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

    def take(self, c: Container, scratch: str) -> tuple[MountPoint, ...]:
        """At start: c's volumes that are mounts mounted (for c), and its mount points with every
        volume and image subpath resolved (an image's layers mounted on the empty directory
        `scratch` meanwhile). Blocking (mounts, lstat): call it in a thread."""
        self.hold(c)
        try:
            return tuple(self._resolved(mp, scratch) for mp in c.mount_points)
        except BaseException:
            self.release(c.id)
            raise

    def _resolved(self, mp: MountPoint, scratch: str) -> MountPoint:
        if not mp.subpath or mp.type not in ("volume", "image"):
            return mp
        if mp.type == "volume":
            return replace(mp, subpath=resolve_subpath(mp.source, mp.subpath))
        return replace(mp, subpath=self._image_subpath(mp, scratch))

    def clear_scratch(self, scratch: str) -> None:
        """What a daemon killed during an image's lookup left mounted on `scratch`, detached
        (at restore, removal, and before the next lookup)."""
        if self.mounter is None:
            return
        try:
            while self.mounter.mounted(scratch):
                self.mounter.unmount(scratch, detach=True)
        except errors.ServinError as exc:
            log.warning("left mounted at %s: %s", scratch, exc.message)

    def _image_subpath(self, mp: MountPoint, scratch: str) -> str:
        """moby's Setup of an image mount: safepath.Join on the image's root, here its only layer or
        an overlay of its layers mounted read-only for the lookup. Too many layers for one mount's
        data: left to the runtime, which resolves it inside the container's overlay."""
        if len(mp.layers) == 1:
            return resolve_subpath(mp.layers[0], mp.subpath)
        data = f"lowerdir={':'.join(mp.layers)}"
        if self.mounter is None or len(data) >= _MOUNT_DATA_MAX:
            return mp.subpath
        self.clear_scratch(scratch)
        try:
            os.makedirs(scratch, exist_ok=True)
        except OSError as exc:
            raise errors.SystemError_(f"mounting image {mp.source}: {_reason(exc)}") from None
        try:
            self.mounter.mount("overlay", scratch, "overlay", f"ro,{data}")
        except errors.ServinError as exc:
            _rmdir(scratch)
            raise errors.SystemError_(f"mounting image {mp.source}: {exc.message}") from None
        try:
            return resolve_subpath(scratch, mp.subpath)
        finally:
            try:
                self.mounter.unmount(scratch, detach=True)
            except errors.ServinError as exc:
                log.warning("unmounting image %s: %s", mp.source, exc.message)
            _rmdir(scratch)

    @contextlib.contextmanager
    def borrowed(self, user: str, mount_points: Iterable[MountPoint]) -> Iterator[None]:
        """The volumes that are mounts among `mount_points` mounted while the block runs, for `user`
        (a container's copy at create, a docker cp): dockerd's Setup and Cleanup around the work."""
        self.lend(user, mount_points)
        try:
            yield
        finally:
            self.release(user)

    def lend(self, user: str, mount_points: Iterable[MountPoint]) -> None:
        """`borrowed` without the block: the caller releases `user`."""
        try:
            for mp in mount_points:
                if mp.type == "volume" and mp.fstype:
                    self._hold(user, mp)
        except BaseException:
            self.release(user)
            raise

    def hold(self, c: Container) -> None:
        """c's volumes that are mounts mounted for c (a container re-attached at daemon start)."""
        self.lend(c.id, c.mount_points)

    def _hold(self, cid: str, mp: MountPoint) -> None:
        if self.mounter is None:
            raise errors.NotImplementedYet(f"volume {mp.name} is a mount, and this engine mounts no volumes")
        d = mp.source
        with self._dir_lock(d):
            with self._lock:
                mounted = d in self._mounted
            if not mounted:
                try:
                    if not mp.device:  # dockerd's getMountOptions
                        raise errors.SystemError_("missing device in volume options")
                    self.mounter.mount(mp.device, d, mp.fstype, ",".join(mp.options))
                except errors.ServinError as exc:
                    raise errors.SystemError_(f"error while mounting volume '{d}': {exc.message}") from None
            with self._lock:
                self._mounted.add(d)
                self._names[d] = mp.name
                self._users.setdefault(d, set()).add(cid)
                self._of.setdefault(cid, set()).add(d)

    def drop(self, cid: str) -> list[str]:
        """c no longer uses its volumes (no syscall: safe on the event loop); returns the directories
        nobody uses any more, for `unmount_unused`."""
        unused = []
        with self._lock:
            for d in self._of.pop(cid, set()):
                users = self._users.get(d, set())
                users.discard(cid)
                if not users:
                    self._users.pop(d, None)
                    unused.append(d)
        return unused

    def unmount_unused(self, dirs: Iterable[str]) -> None:
        """Unmount those of `dirs` still mounted and used by nobody. Blocking: call it in a thread."""
        for d in dirs:
            with self._dir_lock(d):
                with self._lock:
                    if self._users.get(d) or d not in self._mounted:
                        continue
                if self._unmount(d):
                    with self._lock:
                        self._mounted.discard(d)

    def release(self, cid: str) -> None:
        """c is gone (exited, failed to start, removed): volumes nobody else uses are unmounted."""
        self.unmount_unused(self.drop(cid))

    def release_all(self) -> None:
        """Daemon stop: running containers keep their binds; the host keeps no volume mounted."""
        with self._lock:
            self._users.clear()
            self._of.clear()
            dirs = list(self._mounted)
        self.unmount_unused(dirs)

    def _unmount(self, d: str) -> bool:
        """False when it stays mounted (counted as mounted: the next user takes it as it is)."""
        assert self.mounter is not None
        try:
            self.mounter.unmount(d)
            return True
        except errors.ServinError as exc:
            log.warning("unmounting volume %s: %s", d, exc.message)
            return False


def _reason(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError as exc:
        log.warning("cannot remove %s: %s", path, exc)
