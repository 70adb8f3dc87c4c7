"""Slow and greedy clients against a real daemon: a client dribbling header lines is cut off after
--read-header-timeout, one address holding --max-connections-per-client connections gets a 503 that the
docker CLI prints (logged once), and 22,000-style half-sent requests that fill the open-files limit leave
a small log and a daemon that answers /_ping again once the header deadline has cut them off."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.daemon import ServinDaemon

HALF_SENT = b"GET /_ping HTTP/1.1\r\nHost: x\r\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def daemon_on_tcp(*args: str, nofile: tuple[int, int] | None = None) -> Iterator[tuple[ServinDaemon, int]]:
    """A daemon of its own on its socket and a loopback TCP port, started with the open-files limits
    `nofile` (soft, hard) when given; no image loaded."""
    port = free_port()
    d = ServinDaemon(("-H", f"tcp://127.0.0.1:{port}", "--auth-tcp", "none", *args))  # a dev daemon on loopback

    def limit() -> None:
        assert nofile is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    try:
        d.launch(d.command(), **({"preexec_fn": limit} if nofile else {}))
        d.wait_ready()
        yield d, port
    finally:
        d.cleanup()


def open_files_limits(d: ServinDaemon) -> list[str]:
    assert d.proc is not None
    line = next(x for x in Path(f"/proc/{d.proc.pid}/limits").read_text().splitlines()
                if x.startswith("Max open files"))
    return line.split()[3:5]


def half_sent(port: int, n: int) -> list[socket.socket]:
    out = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(HALF_SENT)
        out.append(s)
    return out


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def ping(d: ServinDaemon, timeout: float = 2) -> bool:
    res = subprocess.run(["curl", "-sS", "-m", str(timeout), "--unix-socket", str(d.socket), "http://x/_ping"],
                         capture_output=True, text=True)
    return res.stdout == "OK"


def test_a_client_sending_a_header_line_every_second_is_cut_off_after_the_timeout() -> None:
    with daemon_on_tcp("--read-header-timeout", "2") as (d, port):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /_ping HTTP/1.1\r\n")
        t0 = time.monotonic()
        cut = False
        while time.monotonic() - t0 < 10 and not cut:
            try:
                s.sendall(b"X-Slow: %d\r\n" % time.monotonic_ns())
            except (BrokenPipeError, ConnectionResetError):
                break
            cut = closed_by_peer(s, 0.5)
        assert time.monotonic() - t0 < 4
        s.close()
        # a client that asks at once gets its answer, over TCP and through the docker CLI
        out = subprocess.run(["curl", "-sS", f"http://127.0.0.1:{port}/_ping"], capture_output=True, text=True)
        assert out.stdout == "OK"
        assert d.docker("-H", f"tcp://127.0.0.1:{port}", "version", "--format", "{{.Server.Version}}").stdout.strip()


def test_connections_over_the_per_client_cap_get_a_503_logged_once() -> None:
    with daemon_on_tcp("--max-connections-per-client", "4") as (d, port):
        held = half_sent(port, 4)
        time.sleep(0.3)
        for _ in range(5):
            out = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}/_ping"],
                                 capture_output=True, text=True)
            body, _, code = out.stdout.rpartition("\n")
            assert code == "503"
            assert json.loads(body)["message"].startswith("too many connections from 127.0.0.1: 4 open")
        cli = d.docker("-H", f"tcp://127.0.0.1:{port}", "ps", check=False)
        assert cli.returncode != 0
        assert b"Error response from daemon: too many connections from 127.0.0.1" in cli.stderr
        assert ping(d)  # root on the unix socket is not capped
        assert d.log().count("refusing connections from 127.0.0.1") == 1
        for s in held:
            s.close()
        time.sleep(0.3)
        assert d.docker("-H", f"tcp://127.0.0.1:{port}", "ps").returncode == 0


def test_a_full_descriptor_table_leaves_a_small_log_and_ping_comes_back() -> None:
    limit = 256
    with daemon_on_tcp("--read-header-timeout", "4", "--max-connections-per-client", "0",
                       nofile=(limit, limit)) as (d, port):
        assert d.proc is not None
        used = len(os.listdir(f"/proc/{d.proc.pid}/fd"))
        log_before = len(d.log_file.read_bytes())
        clients = half_sent(port, limit - used + 60)  # 60 more than it can take wait in the backlog
        try:
            time.sleep(1.5)
            assert not ping(d, timeout=1)  # the daemon cannot accept: descriptors are exhausted
            deadline = time.monotonic() + 30
            while not ping(d) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert ping(d), d.log()
        finally:
            for s in clients:
                s.close()
        grown = d.log_file.read_text()[log_before:]
        assert grown.count("accepting connections failed") == 1, grown
        assert "Traceback" not in grown and "socket.accept() out of system resource" not in grown
        assert len(grown) < 4096, grown
        assert open_files_limits(d) == [str(limit), str(limit)]


def test_the_daemon_raises_its_open_files_limit_to_the_hard_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with daemon_on_tcp(nofile=(1024, hard)) as (d, _port):
        assert open_files_limits(d) == [str(hard), str(hard)]
