"""Network namespaces as files: `<exec-root>/netns/<container-id>`, an nsfs bind mount.

The network namespace is a per-thread attribute, so `create` and `open_netlink` do the namespace
work on a dedicated thread that exists only for it: it unshares (or setns into) a network
namespace, binds it on the file, opens a NETLINK_ROUTE socket there and ends. No other thread of
the daemon ever changes namespace (decision 4 holds for the process), and it costs about a
millisecond where a helper process cost 40 ms of interpreter start. `delete` only unmounts and
unlinks. All blocking: call via to_thread.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import threading
from collections.abc import Iterable
from pathlib import Path

from servin import errors
from servin.kernel import mounts

CLONE_NEWNET = 0x40000000
SYSCTL_PART = re.compile(r"[A-Za-z0-9_-]+")  # one component of a sysctl name: no "/", no ".."


def _enter(path: Path) -> None:
    """This thread into the network namespace bound on `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mounts.setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


class NetnsError(OSError):
    pass


def _on_own_thread(op: str, path: Path) -> socket.socket:
    """Run the namespace change on a fresh thread that ends right after: the daemon's other
    threads (and the pool threads that will run later work) never leave their namespace."""
    result: dict[str, object] = {}

    def work() -> None:
        try:
            if op == "create":
                fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
                os.close(fd)
                try:
                    mounts.unshare(CLONE_NEWNET)
                    mounts.mount("/proc/thread-self/ns/net", str(path), None, mounts.MS_BIND)
                except BaseException:
                    path.unlink(missing_ok=True)
                    raise
            else:
                _enter(path)
            result["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, 0)
        except OSError as exc:
            result["error"] = exc

    t = threading.Thread(target=work, name=f"netns-{op}")
    t.start()
    t.join()
    if "error" in result:
        exc = result["error"]
        assert isinstance(exc, OSError)
        raise NetnsError(exc.errno or errno.EIO, f"{op} network namespace {path}: {exc.strerror or exc}")
    sock = result["sock"]
    assert isinstance(sock, socket.socket)
    return sock


def create(path: Path) -> socket.socket:
    """A new network namespace bound on `path` (which must not exist); returns a netlink socket in
    it (the caller closes it)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    return _on_own_thread("create", path)


def open_netlink(path: Path) -> socket.socket:
    """A NETLINK_ROUTE socket inside the namespace bound on `path`."""
    return _on_own_thread("enter", path)


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


def write_sysctls(path: Path, settings: Iterable[tuple[str, str]]) -> None:
    """Write `net.…` sysctls (name, value) inside the namespace bound on `path`, on a thread of
    its own that enters it (/proc/sys/net is the opener's namespace); a value already set is not
    written again. Raises SystemError_ with dockerd's wording."""
    result: dict[str, OSError] = {}

    def work() -> None:
        try:
            _enter(path)
            for name, value in settings:
                parts = name.split(".")
                if not all(SYSCTL_PART.fullmatch(p) for p in parts):  # never a path out of /proc/sys
                    raise NetnsError(errno.EINVAL, f"{name} is not a sysctl name")
                file = Path("/proc/sys", *parts)
                if not file.is_file():
                    raise NetnsError(errno.ENOENT, f"{file} is not a sysctl file")
                if file.read_text().strip() != value:
                    try:
                        file.write_text(value)
                    except OSError as exc:
                        raise NetnsError(exc.errno or errno.EIO, f"unable to write to '{file}': {exc}") from None
        except OSError as exc:
            result["error"] = exc

    t = threading.Thread(target=work, name="netns-sysctl")
    t.start()
    t.join()
    if "error" in result:
        exc = result["error"]
        raise errors.SystemError_(exc.strerror or str(exc)) from None
