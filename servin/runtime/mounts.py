"""OCI mounts in the plan's terms: mount options as runc parses them, and the container's cgroup
filesystem as runc makes it (one cgroup2 mount, or v1's tmpfs of hierarchies)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from servin.errors import InvalidArgument
from servin.runtime.linux import (
    MS_BIND,
    MS_DIRSYNC,
    MS_I_VERSION,
    MS_LAZYTIME,
    MS_MANDLOCK,
    MS_NOATIME,
    MS_NODEV,
    MS_NODIRATIME,
    MS_NOEXEC,
    MS_NOSUID,
    MS_NOSYMFOLLOW,
    MS_PRIVATE,
    MS_RDONLY,
    MS_REC,
    MS_RELATIME,
    MS_REMOUNT,
    MS_SHARED,
    MS_SILENT,
    MS_SLAVE,
    MS_STRICTATIME,
    MS_SYNCHRONOUS,
    MS_UNBINDABLE,
)
from servin.runtime.plan_format import Mount

# mount option -> (clear, flag); like runc's parseMountOptions
_MOUNT_FLAGS: dict[str, tuple[bool, int]] = {
    "async": (True, MS_SYNCHRONOUS),
    "atime": (True, MS_NOATIME),
    "bind": (False, MS_BIND),
    "defaults": (False, 0),
    "dev": (True, MS_NODEV),
    "diratime": (True, MS_NODIRATIME),
    "dirsync": (False, MS_DIRSYNC),
    "exec": (True, MS_NOEXEC),
    "iversion": (False, MS_I_VERSION),
    "noiversion": (True, MS_I_VERSION),
    "lazytime": (False, MS_LAZYTIME),
    "nolazytime": (True, MS_LAZYTIME),
    "loud": (True, MS_SILENT),
    "mand": (False, MS_MANDLOCK),
    "nomand": (True, MS_MANDLOCK),
    "noatime": (False, MS_NOATIME),
    "nodev": (False, MS_NODEV),
    "nodiratime": (False, MS_NODIRATIME),
    "noexec": (False, MS_NOEXEC),
    "nosuid": (False, MS_NOSUID),
    "nosymfollow": (False, MS_NOSYMFOLLOW),
    "norelatime": (True, MS_RELATIME),
    "nostrictatime": (True, MS_STRICTATIME),
    "rbind": (False, MS_BIND | MS_REC),
    "relatime": (False, MS_RELATIME),
    "remount": (False, MS_REMOUNT),
    "ro": (False, MS_RDONLY),
    "rw": (True, MS_RDONLY),
    "silent": (False, MS_SILENT),
    "strictatime": (False, MS_STRICTATIME),
    "suid": (True, MS_NOSUID),
    "sync": (False, MS_SYNCHRONOUS),
}
_PROPAGATION = {
    "private": MS_PRIVATE,
    "rprivate": MS_PRIVATE | MS_REC,
    "shared": MS_SHARED,
    "rshared": MS_SHARED | MS_REC,
    "slave": MS_SLAVE,
    "rslave": MS_SLAVE | MS_REC,
    "unbindable": MS_UNBINDABLE,
    "runbindable": MS_UNBINDABLE | MS_REC,
}
# recursive mount_setattr options other than rro (the plan's attr) are not supported yet: ignored for binds
_IGNORED = {"rrw", "rnosuid", "rsuid", "rnodev", "rdev", "rnoexec", "rexec", "tmpcopyup"}
RECURSIVE_READ_ONLY = "rro"
SUBPATH_OPTION = "x-servin.subpath="  # a bind of this path inside the source (a volume's subpath)


def bind_extras(options: Sequence[str]) -> tuple[str, str]:
    """(subpath, attr) of a bind's options: x-servin.subpath=REL and rro, which are no mount(2) flags."""
    subpath = next((o.removeprefix(SUBPATH_OPTION) for o in options if o.startswith(SUBPATH_OPTION)), "")
    return subpath, RECURSIVE_READ_ONLY if RECURSIVE_READ_ONLY in options else ""


def parse_mount_options(options: Sequence[str]) -> tuple[int, str]:
    """runc's rules: known options become MS_* flags (or clear them), propagation options add
    their bits, everything else goes to the data string."""
    flags = 0
    data: list[str] = []
    for opt in options:
        if opt in _MOUNT_FLAGS:
            clear, bit = _MOUNT_FLAGS[opt]
            flags = flags & ~bit if clear else flags | bit
        elif opt in _PROPAGATION:
            flags |= _PROPAGATION[opt]
        elif opt in _IGNORED or opt == RECURSIVE_READ_ONLY or opt.startswith(SUBPATH_OPTION):
            continue
        else:
            data.append(opt)
    return flags, ",".join(data)


V1_CGROUP_ROOT = "/sys/fs/cgroup"  # where the v1 hierarchies are on the host


def cgroup_mounts(target: str, flags: int, v1_hierarchies: Sequence[tuple[str, str]] | None, *,
                   cgroups_path: str, cgroupns: bool) -> list[Mount]:
    """The container's cgroup filesystem, as runc makes it. On a v2 host: one cgroup2 mount (in
    the container's cgroup namespace its root is the container's cgroup). On a v1/hybrid host: a
    tmpfs at `target`; per hierarchy the container's own cgroup directory bound on
    <target>/<name>, or with a cgroup namespace the hierarchy mounted (the namespace roots it at
    the container's cgroup); symlinks for co-mounted controllers (cpu -> cpu,cpuacct); then the
    tmpfs remounted read-only. `v1_hierarchies` is (directory name, mount data) per hierarchy,
    e.g. ("cpu,cpuacct", "cpu,cpuacct"), ("systemd", "none,name=systemd")."""
    base = flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY | MS_RELATIME)
    if v1_hierarchies is None:
        return [Mount(source="cgroup", target=target, fstype="cgroup2", flags=base)]
    if not cgroupns and not cgroups_path.strip("/"):
        raise InvalidArgument("a cgroup mount without a cgroup namespace needs linux.cgroupsPath")
    tmpfs_flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    root = target.rstrip("/")
    mounts = [Mount(source="tmpfs", target=target, fstype="tmpfs", flags=tmpfs_flags, data="mode=755")]
    for name, data in v1_hierarchies:
        if cgroupns:
            mounts.append(Mount(source="cgroup", target=f"{root}/{name}", fstype="cgroup", flags=base, data=data))
        else:
            own = os.path.normpath(f"{V1_CGROUP_ROOT}/{name}/{cgroups_path.strip('/')}")
            mounts.append(Mount(source=own, target=f"{root}/{name}", fstype="bind", flags=MS_BIND | MS_REC | base))
        if "," in name:
            mounts.extend(Mount(source=name, target=f"{root}/{sub}", fstype="symlink", flags=0)
                          for sub in name.split(","))
    if flags & MS_RDONLY:
        mounts.append(
            Mount(
                source="tmpfs",
                target=target,
                fstype="tmpfs",
                flags=MS_REMOUNT | MS_RDONLY | tmpfs_flags,
                data="mode=755",
            )
        )
    return mounts
