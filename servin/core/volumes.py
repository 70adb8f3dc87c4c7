"""Named volumes of the `local` driver: a directory per volume, or a mount described by
type/device/o options that is made inside each container that uses it."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from servin import atomicfile, errors

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
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
        if not NAME_RE.match(name):
            raise errors.InvalidArgument(
                f'create {name}: "{name}" includes invalid characters for a local volume name, '
                "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host "
                "directory, use absolute path")
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
    """Copy `path` as the image's layers show it (bottom first, whiteouts honoured) into an
    empty volume, keeping owners, modes, times and links: Docker's copy-on-first-mount."""
    rel = path.strip("/")
    for layer in layers:
        src = layer / rel if rel else layer
        if not src.is_dir() or src.is_symlink():
            continue
        if _is_opaque(src):
            _clear(dest)
        _merge(src, dest)
    try:
        top = next(layer / rel for layer in reversed(layers) if (layer / rel).is_dir())
        st = os.lstat(top)
        os.chown(dest, st.st_uid, st.st_gid)
        os.chmod(dest, stat.S_IMODE(st.st_mode))
    except StopIteration:
        pass


def _is_opaque(d: Path) -> bool:
    try:
        return os.getxattr(d, "trusted.overlay.opaque") == b"y"
    except OSError:
        return False


def _clear(d: Path) -> None:
    for child in d.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def _merge(src: Path, dest: Path) -> None:
    for entry in os.scandir(src):
        s, t = Path(entry.path), dest / entry.name
        st = entry.stat(follow_symlinks=False)
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:  # whiteout
            if t.is_dir() and not t.is_symlink():
                shutil.rmtree(t)
            elif t.exists() or t.is_symlink():
                t.unlink()
            continue
        if stat.S_ISDIR(st.st_mode):
            if t.exists() and not t.is_dir():
                t.unlink()
            t.mkdir(exist_ok=True)
            if _is_opaque(s):
                _clear(t)
            _merge(s, t)
            os.chown(t, st.st_uid, st.st_gid)
            os.chmod(t, stat.S_IMODE(st.st_mode))
            os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns))
            continue
        if t.is_dir() and not t.is_symlink():
            shutil.rmtree(t)
        elif t.exists() or t.is_symlink():
            t.unlink()
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(s), t)
        elif stat.S_ISREG(st.st_mode):
            shutil.copyfile(s, t, follow_symlinks=False)
            os.chmod(t, stat.S_IMODE(st.st_mode))
        else:
            continue  # devices and fifos are not copied into volumes
        os.lchown(t, st.st_uid, st.st_gid)
        if not stat.S_ISLNK(st.st_mode):
            os.utime(t, ns=(st.st_atime_ns, st.st_mtime_ns))
