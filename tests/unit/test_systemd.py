"""Socket activation and sd_notify with a faked systemd: the environment and descriptors it would pass."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from servin.daemon import systemd

pytestmark = pytest.mark.unit


def test_activated_fds_are_ours_only_for_our_pid() -> None:
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "2"}
    assert systemd.activated_fds(env) == []
    assert env == {}  # never left for a child to take


def test_activated_fds_count_from_three() -> None:
    # in a process of its own: descriptors 3 and 4 are the test runner's here
    script = (
        "import os, socket, sys\n"
        "from servin.daemon import systemd\n"
        "a, b = socket.socketpair(); c, d = socket.socketpair()\n"
        "os.dup2(a.fileno(), 3); os.dup2(c.fileno(), 4)\n"
        "env = {'LISTEN_PID': str(os.getpid()), 'LISTEN_FDS': '2', 'LISTEN_FDNAMES': 'servin.socket'}\n"
        "fds = systemd.activated_fds(env)\n"
        "print(fds, env, os.get_inheritable(3), os.get_inheritable(4))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[3, 4] {} False False"


def test_listeners_all_or_the_one_asked_for(tmp_path: Path) -> None:
    def passed() -> list[int]:  # what systemd would pass: two listening sockets, as fds 3 and 4
        fds = []
        for i in range(2):
            with socket.socket(socket.AF_UNIX) as s:
                path = tmp_path / f"s{i}"
                path.unlink(missing_ok=True)
                s.bind(str(path))
                s.listen()
                fds.append(s.detach())
        return fds

    both = systemd.listeners("fd://", passed())
    assert [s.getsockname() for s in both] == [str(tmp_path / "s0"), str(tmp_path / "s1")]
    for s in both:
        s.close()
    fds = passed()
    (only,) = systemd.listeners("fd://4", fds)
    assert only.getsockname() == str(tmp_path / "s1")
    only.close()
    with pytest.raises(OSError):  # the other one was closed
        os.fstat(fds[0])


@pytest.mark.parametrize(("address", "fds", "message"), [
    ("fd://", [], "no sockets found via socket activation: make sure the service was started by systemd"),
    ("fd://x", [3], "failed to parse systemd fd address: should be a number: x"),
    ("fd://5", [3], "too few socket activated files passed in by systemd"),
])
def test_listener_errors_are_dockerds(address: str, fds: list[int], message: str) -> None:
    with pytest.raises(systemd.ActivationError, match=f"^{message}$"):
        systemd.listeners(address, fds)


def test_notify_reaches_the_socket_and_the_abstract_namespace(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(tmp_path / "notify"))
        assert systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "notify")})
        assert server.recv(64) == b"READY=1"
    name = f"servin-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind("\0" + name)
        assert systemd.notify("STOPPING=1", {"NOTIFY_SOCKET": "@" + name})
        assert server.recv(64) == b"STOPPING=1"
    assert not systemd.notify("READY=1", {})
    assert not systemd.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
