"""The daemon's own TCP port, through the docker CLI: no container may publish onto it, and a
daemon restarted with a listener on a port a running container publishes refuses that listener."""

from __future__ import annotations

import socket
import urllib.request

from tests.e2e.test_network import WWW, free_port, http_get, out
from tests.support.daemon import ServinDaemon


def ping_tcp(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_ping", timeout=5) as r:
        return r.read().decode()


def with_tcp_listener(d: ServinDaemon, port: int) -> None:
    d.stop()
    d.launch([*d.command(d.host, f"tcp://127.0.0.1:{port}"), "--auth-tcp", "none"])  # a dev daemon on loopback
    d.wait_ready()


def test_a_container_cannot_publish_onto_the_daemons_port(daemon: ServinDaemon) -> None:
    d = daemon
    port = free_port()
    with_tcp_listener(d, port)
    assert ping_tcp(port) == "OK"
    for spec in (f"127.0.0.1:{port}:80", f"{port}:80", f"0.0.0.0:{port}:80"):
        res = d.docker("run", "-d", "-p", spec, "busybox", "sleep", "60", check=False)
        assert res.returncode != 0, res
        shown = "127.0.0.1" if spec.startswith("127.") else "0.0.0.0"
        assert (f"Bind for {shown}:{port} failed: port is already allocated: "
                f"the daemon listens on tcp://127.0.0.1:{port}").encode() in res.stderr, res.stderr
        d.docker("rm", "-f", res.stdout.decode().strip() or "x", check=False)
    assert ping_tcp(port) == "OK"  # the daemon still answers there
    # UDP of the same number, and another port, are fine
    out(d, "run", "-d", "-p", f"{port}:80/udp", "busybox", "sleep", "60")
    other = free_port()
    cid = out(d, "run", "-d", "-p", f"127.0.0.1:{other}:80", "busybox", "sh", "-c", WWW.format(tag="o")).strip()
    assert http_get(other) == "hello-from-o\n"
    d.docker("rm", "-f", cid)


def test_a_listener_a_running_container_publishes_is_refused(daemon: ServinDaemon) -> None:
    d = daemon
    port = free_port()
    out(d, "run", "-d", "--name", "holder", "-p", f"{port}:80", "busybox", "sh", "-c", WWW.format(tag="h"))
    assert http_get(port) == "hello-from-h\n"
    with_tcp_listener(d, port)  # the container keeps running across the restart
    assert (f"not listening on tcp://127.0.0.1:{port}: port {port} is published by container holder"
            in d.log()), d.log()
    assert out(d, "inspect", "-f", "{{.State.Running}}", "holder").strip() == "true"  # the unix socket serves
    assert http_get(port) == "hello-from-h\n"  # the port is still the container's
    d.docker("rm", "-f", "holder")
    s = socket.socket()
    try:
        s.settimeout(2)
        assert s.connect_ex(("127.0.0.1", port)) != 0  # and the daemon never listened there
    finally:
        s.close()
