"""The network-namespace helper: a short-lived process that does the namespace work the daemon
must not do itself (ARCHITECTURE.md, decision 4) and hands back a netlink socket.

    python3 -m servin.kernel.netns_exec create <path> <fd>   a new network namespace, kept alive
                                                     by a bind mount of its nsfs file on <path>
    python3 -m servin.kernel.netns_exec enter <path> <fd>    an existing one (a file made by create)

<fd> is an inherited unix datagram socket: the helper sends one message b"ok" carrying (SCM_RIGHTS) a NETLINK_ROUTE
socket created inside the namespace. Netlink sockets stay in the namespace they were created in,
so the daemon configures the namespace through that socket without ever entering it. On failure
the helper writes the reason to stderr and exits 1 (create leaves no file behind).
"""

from __future__ import annotations

import os
import socket
import sys

from servin.kernel import mounts

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0


def _send_netlink(chan: socket.socket) -> None:
    nl = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    socket.send_fds(chan, [b"ok"], [nl.fileno()])


def create(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
    os.close(fd)
    try:
        mounts.unshare(CLONE_NEWNET)
        mounts.mount("/proc/self/ns/net", path, None, mounts.MS_BIND)
    except BaseException:
        os.unlink(path)
        raise


def enter(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mounts.setns(fd, CLONE_NEWNET)
    finally:
        os.close(fd)


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[1] not in ("create", "enter"):
        print("usage: netns_exec create|enter <path> <fd>", file=sys.stderr)
        return 2
    chan = socket.socket(fileno=int(argv[3]))
    try:
        (create if argv[1] == "create" else enter)(argv[2])
        _send_netlink(chan)
    except OSError as e:
        print(f"{argv[1]} network namespace {argv[2]}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
