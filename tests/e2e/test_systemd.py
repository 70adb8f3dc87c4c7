"""Run as systemd runs it (packaging/servin.socket + servin.service, Type=notify), with a faked
systemd: a listening socket passed as fd 3 with LISTEN_PID/LISTEN_FDS, and a NOTIFY_SOCKET; and
reloaded as `systemctl reload` does (SIGHUP)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support.daemon import ServinDaemon
from tests.support.wait import wait_for

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
        assert daemon.docker("version", "--format", "{{.Server.APIVersion}}").stdout.strip() == b"1.55"
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


def test_sighup_reloads_daemon_json(daemon: ServinDaemon) -> None:
    daemon.start()
    mirrors = "{{json .RegistryConfig.Mirrors}}"
    assert daemon.docker("info", "--format", mirrors).stdout.strip() == b"[]"
    since = str(int(time.time()) - 1)
    daemon.config_file.write_text(json.dumps({"registry-mirrors": ["https://mirror.example"],
                                              "insecure-registries": ["registry.example:5000"]}))
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    info = wait_for(lambda: json.loads(daemon.docker("info", "--format", "{{json .RegistryConfig}}").stdout),
                     lambda c: c["Mirrors"] == ["https://mirror.example/"])
    assert info["IndexConfigs"]["registry.example:5000"]["Secure"] is False
    events = daemon.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                           "--filter", "type=daemon", "--format", "{{.Action}}").stdout.split()
    assert events == [b"reload"]
    # a file that does not load, or that names a flag's setting too, leaves the running configuration
    for failures, bad in enumerate(("{not json", json.dumps({"debug": True})), 1):  # --debug: a flag here
        daemon.config_file.write_text(bad)
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(daemon.log_file.read_text, lambda text, n=failures: text.count("the running one stays") >= n)
        assert json.loads(daemon.docker("info", "--format", mirrors).stdout) == ["https://mirror.example/"]
