"""Named volumes of the `local` driver: a directory per volume, or a mount described by
type/device/o options that is made inside each container that uses it."""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from servin import atomicfile, errors
from servin.core import names
from servin.images import union

RECORD = "volume.json"


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


class VolumeStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._vols: dict[str, Volume] = {}
        for d in root.iterdir():
            rec = d / RECORD
            if not rec.exists():
                shutil.rmtree(d, ignore_errors=True)  # a create that crashed half way
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
        for key in options:
            if key not in ("type", "device", "o", "size"):
                raise errors.InvalidArgument(f"invalid option key: {key!r}")
        with self._lock:
            if name in self._vols:
                return self._vols[name], False
            d = self.root / name
            (d / "_data").mkdir(parents=True, exist_ok=True)
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

    def remove(self, name: str, *, users: list[str], force: bool = False) -> None:
        vol = self._vols.get(name)
        if vol is None:
            if force:
                return
            raise errors.NotFound(f"get {name}: no such volume")
        if users:
            raise errors.Conflict(f"remove {name}: volume is in use - [{', '.join(users)}]")
        with self._lock:
            d = self.root / name
            (d / RECORD).unlink(missing_ok=True)  # first: a crash mid-removal leaves no half volume
            shutil.rmtree(d, ignore_errors=True)
            self._vols.pop(name, None)

    def size(self, name: str) -> int:
        return tree_size(self.data_dir(name))


def tree_size(root: Path) -> int:
    """Bytes of the files below `root` (not following links), as `docker system df` counts."""
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def copy_image_content(layers: list[Path], path: str, dest: Path) -> None:
    """Docker's copy-on-first-mount: copy what the image shows at ``path`` into the volume
    directory ``dest``, keeping owners, modes (setuid included), times, xattrs and symlinks (devices,
    fifos and sockets are left out). ``layers`` are the image's layer dirs, lowest first.

    The image is read only through ``images.union``: ``path`` is resolved inside the image's root
    (``/../../etc`` is the image's ``/etc``, symlinks are followed in scope as moby's
    ``GetResourcePath`` does) and no symlink inside a layer is followed. The volume is written only
    through directory fds opened with ``O_NOFOLLOW``: names are created with ``mkdirat``,
    ``O_CREAT|O_EXCL`` and ``symlinkat``, which never follow a symlink, and owners, modes and times
    are set on the new entry itself. A name already in the volume (made by a container sharing it
    while the copy runs) is left as it is. The volume's root takes the owner and mode of the
    image's directory."""
    src = union.resolve(list(reversed(layers)), path)
    if src is None or not src.is_dir:
        return
    fd = os.open(dest, _DIR_FLAGS)
    try:
        _copy_children(src, fd)
        os.chown(fd, src.st.st_uid, src.st.st_gid)
        os.chmod(fd, stat.S_IMODE(src.st.st_mode))
    finally:
        os.close(fd)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# What a name planted in the volume during the copy makes the creation or the open fail with.
_PLANTED = (errno.EEXIST, errno.ELOOP, errno.ENOTDIR)


def _copy_children(d: union.Entry, dir_fd: int) -> None:
    for name, e in sorted(union.listdir(d).items()):
        try:
            _copy_entry(e, name, dir_fd)
        except OSError as err:
            if err.errno not in _PLANTED:
                raise


def _copy_entry(e: union.Entry, name: str, dir_fd: int) -> None:
    st = e.st
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
        try:
            _copy_children(e, fd)
            _set_attrs(fd, e)
        finally:
            os.close(fd)
    elif stat.S_ISREG(st.st_mode):
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
