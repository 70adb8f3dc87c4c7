"""Run as systemd runs it (packaging/servin.socket + servin.service, Type=notify), with a faked
systemd: a listening socket passed as fd 3 with LISTEN_PID/LISTEN_FDS, and a NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator

import pytest

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e

# systemd passes the socket as descriptor 3 and sets LISTEN_PID to the service's pid: this wrapper
# does the same to itself, then execs the daemon (same pid)
AS_SYSTEMD = (
    "import os, sys\n"
    "fd = int(os.environ.pop('SOCKET_FD'))\n"
    "if fd != 3:\n"
    "    os.dup2(fd, 3)\n"
    "    os.close(fd)\n"
    "os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS='1')\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n"
)


@pytest.fixture
def daemon() -> Iterator[ServinDaemon]:
    d = ServinDaemon()
    try:
        yield d
    finally:
        d.cleanup()


def _activated(d: ServinDaemon, *hosts: str) -> socket.socket:
    """Start the daemon socket-activated on its socket path; the notify socket it must report to."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(d.socket))
    os.chmod(d.socket, 0o660)
    listener.listen()
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(d.root / "notify"))
    notify.settimeout(20)
    fd = listener.fileno()
    env = {**os.environ, "SOCKET_FD": str(fd), "NOTIFY_SOCKET": str(d.root / "notify")}
    d.launch([sys.executable, "-c", AS_SYSTEMD, *d.command(*hosts)], pass_fds=(fd,), env=env)
    listener.close()
    return notify


def test_socket_activated_daemon_serves_and_says_ready(daemon: ServinDaemon) -> None:
    notify = _activated(daemon, "fd://")
    with notify:
        assert notify.recv(64) == b"READY=1"  # only once it serves
        assert daemon.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == b"1.41"
        daemon.stop()
        assert notify.recv(64) == b"STOPPING=1"
    assert daemon.proc is not None and daemon.proc.returncode == 0


def test_fd_host_without_activation_is_refused(daemon: ServinDaemon) -> None:
    daemon.launch(daemon.command("fd://"))
    assert daemon.proc is not None and daemon.proc.wait(20) != 0
    assert "no sockets found via socket activation: make sure the service was started by systemd" in daemon.log()


def test_fd_number_beyond_what_was_passed_is_refused(daemon: ServinDaemon) -> None:
    notify = _activated(daemon, "fd://4")
    notify.close()
    assert daemon.proc is not None and daemon.proc.wait(20) != 0
    assert "too few socket activated files passed in by systemd" in daemon.log()
