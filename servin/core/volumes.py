"""Named volumes of the `local` driver: a directory per volume, or a mount described by
type/device/o options, mounted on that directory while containers use it (core/volumemounts.py).
`VolumeStore` keeps the records; `Volumes` is what the API sees (list filters, create and remove with
their events, prune)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
import stat
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from servin import atomicfile, errors
from servin.core import names
from servin.core.events import Event, EventBus
from servin.core.volumeopts import check_local_options
from servin.core.query import Filters, label_matches, prune_labels_allow
from servin import safefs
from servin.images import union

log = logging.getLogger(__name__)

RECORD = "volume.json"
VOLUME_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    name: str
    driver: str = "local"
    labels: dict[str, str] = field(default_factory=dict)
    options: dict[str, str] = field(default_factory=dict)
    created: str = ""
    anonymous: bool = False
    mountpoint: str = ""

    @property
    def is_mount(self) -> bool:
        """Options like type=tmpfs/device=tmpfs/o=size=64m describe a mount, not a plain dir."""
        return bool(self.options.get("type") or self.options.get("device"))


def _remove(d: Path) -> None:
    """Remove a volume's directory, at any depth; what cannot be removed is logged and left."""
    try:
        safefs.remove_tree(d)
    except OSError as exc:
        log.warning("cannot remove %s: %s", d, exc)


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._vols: dict[str, Volume] = {}
        for d in root.iterdir():
            st = os.lstat(d)
            if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != VOLUME_DIR_MODE:
                os.chmod(d, VOLUME_DIR_MODE)  # an older installation's 0755
            rec = d / RECORD
            if not rec.exists():
                _remove(d)  # a create (or a removal) that crashed half way
                continue
            try:
                data = atomicfile.read_json(rec)
                self._vols[data["name"]] = Volume(**data)
            except (ValueError, KeyError, TypeError):
                continue

    def data_dir(self, name: str) -> Path:
        return self.root / name / "_data"

    def create(self, name: str | None, *, driver: str = "local", labels: dict[str, str] | None = None,
               options: dict[str, str] | None = None, created: str = "") -> tuple[Volume, bool]:
        """Returns (volume, created_now). Creating an existing name returns it, as Docker does."""
        anonymous = not name
        name = name or secrets.token_hex(32)
        names.check_volume_name(name)  # the name is a directory under the root: nothing else passes
        if driver != "local":
            raise errors.NotFound(f"error looking up volume plugin {driver}: plugin \"{driver}\" not found")
        options = dict(options or {})
        with self._lock:
            if name in self._vols:  # as dockerd: the existing volume, whatever the options
                return self._vols[name], False
            check_local_options(name, options)
            d = self.root / name
            d.mkdir(mode=VOLUME_DIR_MODE, exist_ok=True)  # no local user reaches the data (setuid files)
            (d / "_data").mkdir(exist_ok=True)
            vol = Volume(name=name, driver=driver, labels=dict(labels or {}), options=options,
                         created=created, anonymous=anonymous, mountpoint=str(d / "_data"))
            atomicfile.write_json(d / RECORD, {f: getattr(vol, f) for f in vol.__dataclass_fields__})
            self._vols[name] = vol
            return vol, True

    def get(self, name: str) -> Volume:
        vol = self._vols.get(name)
        if vol is None:
            raise errors.NotFound(f"get {name}: no such volume")
        return vol

    def list(self) -> list[Volume]:
        return sorted(self._vols.values(), key=lambda v: v.name)

    def remove(self, name: str, *, users: Sequence[str], force: bool = False) -> None:
        vol = self._vols.get(name)
        if vol is None:
            if force:
                return
            raise errors.NotFound(f"get {name}: no such volume")
        if users:
            raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        with self._lock:
            d = self.root / name
            if safefs.is_mount_point(d / "_data"):  # a create's copy, or an unmount that failed
                raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
            (d / RECORD).unlink(missing_ok=True)  # first: a crash mid-removal leaves no half volume
            _remove(d)  # what is left without its record, the next start removes
            self._vols.pop(name, None)

    def size(self, name: str) -> int:
        return tree_size(self.data_dir(name))


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSpec:
    """A volume to create; no name: a generated one (an anonymous volume)."""

    name: str | None = None
    driver: str = "local"
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumePruneReport:
    deleted: tuple[str, ...] = ()  # names
    reclaimed: int = 0  # bytes


class Volumes:
    """The volumes as the API sees them. `users(name)`: the containers that use a volume;
    `now()`: the RFC 3339 time a new volume records."""

    def __init__(self, *, store: VolumeStore, users: Callable[[str], list[str]], events: EventBus,
                 now: Callable[[], str]) -> None:
        self._store = store
        self._users = users
        self._events = events
        self._now = now

    def _publish(self, action: str, name: str, driver: str) -> None:
        self._events.publish(Event(type="volume", action=action, actor_id=name, attributes={"driver": driver}))

    async def create(self, spec: VolumeSpec) -> Volume:
        """Creating an existing name returns it, with no event (as dockerd)."""
        vol, created = await asyncio.to_thread(
            self._store.create, spec.name, driver=spec.driver, labels=dict(spec.labels),
            options=dict(spec.options), created=self._now())
        if created:
            self._publish("create", vol.name, vol.driver)
        return vol

    async def list(self, filters: Filters) -> list[Volume]:
        """`docker volume ls`: dangling, driver, label, name (substring)."""
        vols = self._store.list()
        if "name" in filters:
            vols = [v for v in vols if any(n in v.name for n in filters["name"])]
        if "driver" in filters:
            vols = [v for v in vols if v.driver in filters["driver"]]
        if "label" in filters:
            vols = [v for v in vols if label_matches(v.labels, filters["label"])]
        if "dangling" in filters:
            want = filters["dangling"][0].lower() in ("1", "true")
            vols = [v for v in vols if (not self._users(v.name)) == want]
        return vols

    async def inspect(self, name: str) -> Volume:
        return self._store.get(name)

    async def remove(self, name: str, *, force: bool = False) -> None:
        """A volume in use is a Conflict; with `force` a missing one is no error (its event still goes out)."""
        users = self._users(name)
        await asyncio.to_thread(self._store.remove, name, users=users, force=force)
        self._publish("destroy", name, "local")

    async def prune(self, filters: Filters) -> VolumePruneReport:
        """Unused anonymous volumes, or with the filter all=true every unused one (requests below API 1.42
        carry it: versions.py); label and label! select."""
        every = _all_filter(filters.get("all") or [])
        deleted, reclaimed = [], 0
        for v in self._store.list():
            if self._users(v.name) or not prune_labels_allow(v.labels, filters) or not (every or v.anonymous):
                continue
            reclaimed += await asyncio.to_thread(self._store.size, v.name)
            await asyncio.to_thread(self._store.remove, v.name, users=[])
            self._publish("destroy", v.name, v.driver)
            deleted.append(v.name)
        return VolumePruneReport(deleted=tuple(deleted), reclaimed=reclaimed)


def _all_filter(values: Sequence[str]) -> bool:
    """dockerd's withPrune: at most one value, Go's strconv.ParseBool."""
    if len(values) > 1:
        raise errors.InvalidArgument(f"invalid filter 'all=[{' '.join(values)}]': only one value is expected")
    if not values:
        return False
    if values[0] in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if values[0] in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise errors.InvalidArgument(
        f'invalid filter \'all\': strconv.ParseBool: parsing "{values[0]}": invalid syntax')


def tree_size(root: Path) -> int:
    """Bytes of the files below `root` (not following links), as `docker system df` counts. The tree
    may be a running container's: walked with directory fds at any depth (safefs.DirStack), and what
    changes meanwhile is counted as found, or not at all."""
    try:
        root_fd = safefs.open_root(root)
    except OSError:
        return 0
    walk = safefs.DirStack(root_fd)
    total = 0

    def scan() -> list[str]:
        nonlocal total
        dirs: list[str] = []
        try:
            with os.scandir(walk.fd) as it:
                entries = list(it)
        except OSError:
            return dirs
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    dirs.append(e.name)
                else:
                    total += e.stat(follow_symlinks=False).st_size
            except OSError:
                pass
        return dirs

    try:
        pending = [scan()]
        while pending:
            if not pending[-1]:
                pending.pop()
                if walk.depth:
                    walk.pop()
                continue
            try:
                walk.push(pending[-1].pop())
            except OSError:
                continue  # gone or replaced meanwhile
            pending.append(scan())
    except OSError:
        pass  # the tree moved under the walk (ESTALE): what was counted
    finally:
        walk.close()
        os.close(root_fd)
    return total


def copy_image_content(layers: list[Path], path: str, dest: Path | int) -> None:
    """Docker's copy into a new volume (at container create, core/creation.py): copy what the
    image shows at ``path`` into the volume directory ``dest``, keeping owners, modes (setuid
    included), times, xattrs and symlinks (devices, fifos and sockets are left out). ``layers``
    are the image's layer dirs, lowest first.

    The image is read only through ``images.union``: ``path`` is resolved inside the image's root
    (``/../../etc`` is the image's ``/etc``, symlinks are followed in scope as moby's
    ``GetResourcePath`` does) and no symlink inside a layer is followed. The volume is written only
    through directory fds opened with ``O_NOFOLLOW``: names are created with ``mkdirat``,
    ``O_CREAT|O_EXCL`` and ``symlinkat``, which never follow a symlink, and owners, modes and times
    are set on the new entry itself. A name already in the volume (made by a container sharing it
    while the copy runs) is left as it is. The volume's root takes the owner and mode of the
    image's directory. ``dest`` may be an open directory fd (left open)."""
    src = union.resolve(list(reversed(layers)), path)
    if src is None or not src.is_dir:
        return
    fd = os.open(dest, _DIR_FLAGS) if not isinstance(dest, int) else dest
    try:
        _copy_tree(src, fd, path)
        os.chown(fd, src.st.st_uid, src.st.st_gid)
        os.chmod(fd, stat.S_IMODE(src.st.st_mode))
    finally:
        if fd != dest:
            os.close(fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What a name planted in the volume during the copy makes the creation or the open fail with.
_PLANTED = (errno.EEXIST, errno.ELOOP, errno.ENOTDIR)
_NAME_MAX = 255


def _copy_tree(src: union.Entry, dest_fd: int, path: str) -> None:
    """Copy the children of the directory ``src`` into ``dest_fd``, depth first, at any depth: an
    explicit stack (no recursion) and the volume's directories held by a safefs.DirStack (bounded
    fds). A directory's attributes are set once its contents are in."""
    walk = safefs.DirStack(dest_fd)
    stack = [(src, iter(_children(src, path)))]
    try:
        while stack:
            d, todo = stack[-1]
            item = next(todo, None)
            if item is None:
                stack.pop()
                if walk.depth:  # a directory below the volume's root is complete
                    try:
                        _set_attrs(walk.fd, d)
                    finally:
                        walk.pop()
                continue
            name, e = item
            try:
                if e.is_dir:
                    os.mkdir(name, 0o700, dir_fd=walk.fd)
                    walk.push(name)
                    stack.append((e, iter(_children(e, path))))
                else:
                    _copy_entry(e, name, walk.fd)
            except OSError as err:
                if err.errno not in _PLANTED:
                    raise
    finally:
        walk.close()


def _children(d: union.Entry, path: str) -> list[tuple[str, union.Entry]]:
    """The merged children of ``d``, sorted. A child whose path on the host would reach PATH_MAX
    cannot be read (the union view would silently leave it out): TooDeep instead."""
    longest = max(len(os.fsencode(p)) for p in d.stack)
    if longest + 1 + _NAME_MAX >= safefs.PATH_MAX:  # close to the limit: look at the names
        for p in d.stack:
            try:
                names = os.listdir(p)
            except OSError as err:
                if err.errno == errno.ENAMETOOLONG:
                    raise safefs.TooDeep(f"copying the image's {path} into the volume") from None
                continue
            plen = len(os.fsencode(p))
            if any(plen + 1 + len(os.fsencode(n)) >= safefs.PATH_MAX for n in names):
                raise safefs.TooDeep(f"copying the image's {path} into the volume")
    return sorted(union.listdir(d).items())


def _copy_entry(e: union.Entry, name: str, dir_fd: int) -> None:
    """Copy one non-directory (directories: _copy_tree)."""
    st = e.st
    if stat.S_ISREG(st.st_mode):
        src = os.open(e.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
            try:
                _copy_data(src, fd)
                _set_attrs(fd, e)
            finally:
                os.close(fd)
        finally:
            os.close(src)
    elif stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(e.path), name, dir_fd=dir_fd)
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
    # devices, fifos and sockets are not copied into volumes


def _set_attrs(fd: int, e: union.Entry) -> None:
    """Owner, then mode (a chown clears setuid/setgid), xattrs (a chown also drops file
    capabilities), times last, all on the open entry."""
    st = e.st
    os.chown(fd, st.st_uid, st.st_gid)
    os.chmod(fd, stat.S_IMODE(st.st_mode))
    try:
        names = os.listxattr(e.path, follow_symlinks=False)
    except OSError:
        names = []
    for key in names:
        if key.startswith("trusted.overlay."):  # overlayfs' own marks (opaque, ...), not the file's
            continue
        try:
            os.setxattr(fd, key, os.getxattr(e.path, key, follow_symlinks=False))
        except OSError:
            pass  # unsupported by the volume's filesystem, as dockerd ignores it
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_data(src: int, dst: int) -> None:
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as err:
        if err.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while chunk := os.read(src, 1 << 20):  # from where copy_file_range stopped
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view):]
