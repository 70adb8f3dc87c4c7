"""The host side of a local volume that is a mount (created with type/device/o options): its
filesystem mounted on the volume's _data directory, as dockerd's local driver does
(daemon/volume/local/local_unix.go, moby/sys/mount for the options)."""

from __future__ import annotations

import contextlib
import os

from servin.errors import SystemError_
from servin.kernel import mounts as kmounts
from servin.kernel.mounts import MNT_DETACH
from servin.runtime.linux import MS_BIND, MS_REC, MS_REMOUNT
from servin.runtime.mounts import parse_mount_options

class LocalVolumeMounter:
    """Mounts and unmounts in the daemon's own mount namespace (the host's)."""

    def mount(self, device: str, target: str, fstype: str, options: str) -> None:
        """`options` is the volume's `o`: flags (ro, nosuid, bind, ...) and the filesystem's data."""
        flags, data = parse_mount_options([o for o in options.split(",") if o])
        try:
            first = flags & (MS_BIND | MS_REC) if flags & MS_BIND else flags
            kmounts.mount(device, target, fstype or "none", first, data or None)
            if flags & MS_BIND and flags & ~(MS_BIND | MS_REC):  # moby/sys/mount: a bind's flags by a remount
                try:
                    kmounts.mount(None, target, None, flags | MS_REMOUNT, None)
                except OSError:
                    with contextlib.suppress(OSError):  # the remount's error is the one to tell
                        kmounts.umount(target, MNT_DETACH)  # the bind without its flags stays nowhere
                    raise
        except OSError as exc:
            where = f"{device}:{target}" if device else target
            text = f"mount {where}" + (f", flags: 0x{flags:x}" if flags else "") + (f", data: {data}" if data else "")
            message = f"failed to mount local volume: {text}: {(exc.strerror or str(exc)).lower()}"
            if password := next((o[9:] for o in options.split(",") if o.startswith("password=")), ""):
                message = message.replace(f"password={password}", "password=********", 1)  # as dockerd
            raise SystemError_(message) from None

    def unmount(self, target: str, *, detach: bool = False) -> None:
        """`detach`: MNT_DETACH (gone from the tree now, released when its last user lets go)."""
        try:
            kmounts.umount(target, MNT_DETACH if detach else 0)
        except OSError as exc:
            if self.mounted(target):  # as dockerd: an unmount that left nothing mounted is no error
                raise SystemError_(f"unmount {target}: {(exc.strerror or str(exc)).lower()}") from None

    def mounted(self, target: str) -> bool:
        return os.path.isdir(target) and kmounts.is_mountpoint(target)
