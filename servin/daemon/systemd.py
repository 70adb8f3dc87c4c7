"""What systemd hands a service and wants back: socket-activated listeners (`-H fd://`, as dockerd's
daemon/listeners listenFD over go-systemd's activation.Files) and readiness (`sd_notify`, for
`Type=notify`)."""

from __future__ import annotations

import os
import socket
from collections.abc import MutableMapping

LISTEN_FDS_START = 3  # SD_LISTEN_FDS_START
_ACTIVATION_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class ActivationError(Exception):
    pass


def activated_fds(env: MutableMapping[str, str] | None = None, *, pid: int | None = None) -> list[int]:
    """The descriptors systemd passed this process (LISTEN_FDS from fd 3 on, when LISTEN_PID is us),
    made close-on-exec; the variables are removed so that no child takes them for its own."""
    env = os.environ if env is None else env
    try:
        for_pid = int(env.get("LISTEN_PID", ""))
        count = int(env.get("LISTEN_FDS", ""))
    except ValueError:
        return []
    finally:
        for name in _ACTIVATION_VARS:
            env.pop(name, None)
    if for_pid != (os.getpid() if pid is None else pid) or count <= 0:
        return []
    fds = list(range(LISTEN_FDS_START, LISTEN_FDS_START + count))
    for fd in fds:
        os.set_inheritable(fd, False)
    return fds


def listeners(address: str, fds: list[int]) -> list[socket.socket]:
    """`fd://` (every activated socket) or `fd://N` (that one; the others are closed), dockerd's words."""
    if not fds:
        raise ActivationError("no sockets found via socket activation: make sure the service was started by systemd")
    spec = address.removeprefix("fd://")
    if spec in ("", "*"):
        return [_socket(fd) for fd in fds]
    if not spec.isdigit():
        raise ActivationError(f"failed to parse systemd fd address: should be a number: {spec}")
    index = int(spec) - LISTEN_FDS_START  # fd N is the (N-3)th passed
    if not 0 <= index < len(fds):
        raise ActivationError("too few socket activated files passed in by systemd")
    for fd in fds[:index] + fds[index + 1:]:
        os.close(fd)
    return [_socket(fds[index])]


def _socket(fd: int) -> socket.socket:
    try:
        return socket.socket(fileno=fd)
    except OSError:  # not a socket: dockerd's words
        raise ActivationError(f"failed to listen on systemd activated file: fd {fd}") from None


def notify(state: str, env: MutableMapping[str, str] | None = None) -> bool:
    """sd_notify: send `state` (READY=1, STOPPING=1, RELOADING=1, STATUS=...) to NOTIFY_SOCKET;
    False when not run by systemd (or the socket is gone)."""
    env = os.environ if env is None else env
    path = env.get("NOTIFY_SOCKET", "")
    if not path or path[0] not in "/@":
        return False
    address = "\0" + path[1:] if path[0] == "@" else path  # "@": the abstract namespace
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
        try:
            s.sendto(state.encode(), address)
        except OSError:
            return False
    return True
