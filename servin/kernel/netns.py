"""Network namespaces as files: `<exec-root>/netns/<container-id>`, an nsfs bind mount.

The daemon never unshares or setns (decision 4): `create` and `open_netlink` run the helper
`servin.kernel.netns_exec`, which does the namespace work in its own short-lived process and
passes back a NETLINK_ROUTE socket that lives in the namespace. `delete` only unmounts and
unlinks, which needs no namespace change. All blocking: the engine calls them via to_thread.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import servin
from servin.kernel import mounts

_PYTHONPATH = str(Path(servin.__file__).resolve().parent.parent)
_TIMEOUT = 30


class NetnsError(OSError):
    pass


def _helper(op: str, path: Path) -> socket.socket:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": _PYTHONPATH,
           "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "servin.kernel.netns_exec", op, str(path), str(child.fileno())],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=env, cwd="/", timeout=_TIMEOUT, pass_fds=(child.fileno(),),
        )
        child.close()
        if proc.returncode != 0:
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            raise NetnsError(errno.EIO, lines[-1] if lines else f"netns helper exited {proc.returncode}")
        parent.settimeout(_TIMEOUT)
        _, fds, _, _ = socket.recv_fds(parent, 16, 1)
        if not fds:
            raise NetnsError(errno.EIO, "the netns helper sent no socket")
        return socket.socket(fileno=fds[0])
    finally:
        child.close()
        parent.close()


def create(path: Path) -> socket.socket:
    """A new network namespace bound on `path` (which must not exist); returns a netlink socket in
    it (the caller closes it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return _helper("create", path)


def open_netlink(path: Path) -> socket.socket:
    """A NETLINK_ROUTE socket inside the namespace bound on `path`."""
    return _helper("enter", path)


def is_netns_file(path: Path) -> bool:
    try:
        return mounts.is_mountpoint(path) and os.stat(path).st_dev != os.stat(path.parent).st_dev
    except FileNotFoundError:
        return False


def delete(path: Path) -> None:
    """Unmount and remove a namespace file; the namespace goes away with its last user.
    Idempotent."""
    try:
        mounts.umount(path, mounts.MNT_DETACH)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOENT):
            raise
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def cleanup(directory: Path, keep: Iterable[str]) -> list[str]:
    """At daemon start: delete the namespace files in `directory` whose name (a container id) is
    not in `keep` (the containers that still run). Returns the names removed."""
    wanted = set(keep)
    removed: list[str] = []
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return removed
    for name in names:
        if name in wanted or name.startswith("."):
            continue
        delete(directory / name)
        removed.append(name)
    return removed
