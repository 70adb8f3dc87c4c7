"""The userland proxy shares the daemon's file descriptors: a listener's TCP connections and UDP
flows are capped (a connection beyond is closed, a new UDP client evicts the least recently used)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator

import pytest

from servin.network import proxy as proxy_mod
from servin.network.proxy import ProxiedPort, UserlandProxy


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def proxy() -> Iterator[UserlandProxy]:
    p = UserlandProxy()
    yield p
    p.close()


def test_udp_flows_are_capped_the_least_recently_used_evicted(proxy: UserlandProxy,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_mod, "MAX_UDP_FLOWS", 2, raising=False)
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        echo.settimeout(0.1)
        while not stop.is_set():
            try:
                data, addr = echo.recvfrom(100)
            except OSError:
                continue
            echo.sendto(data, addr)

    threading.Thread(target=serve, daemon=True).start()
    port = ProxiedPort(proto="udp", host_ip="127.0.0.1", host_port=_free_port(socket.SOCK_DGRAM),
                       target_ip="127.0.0.1", target_port=echo.getsockname()[1])
    clients = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    try:
        proxy.start(port)
        before = _fds()
        for i, c in enumerate(clients):
            c.settimeout(5)
            c.sendto(b"hi %d" % i, ("127.0.0.1", port.host_port))
            assert c.recvfrom(100)[0] == b"hi %d" % i  # each client served, evicting the oldest
        assert _fds() - before <= 2  # the daemon holds 2 flows' sockets, not 6
        clients[0].sendto(b"again", ("127.0.0.1", port.host_port))  # an evicted client: a new flow
        assert clients[0].recvfrom(100)[0] == b"again"
        assert _fds() - before <= 2
    finally:
        stop.set()
        for c in clients:
            c.close()
        echo.close()


def test_tcp_connections_beyond_the_cap_are_closed(proxy: UserlandProxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_mod, "MAX_TCP_CONNECTIONS", 2, raising=False)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    port = ProxiedPort(proto="tcp", host_ip="127.0.0.1", host_port=_free_port(socket.SOCK_STREAM),
                       target_ip="127.0.0.1", target_port=server.getsockname()[1])
    clients: list[socket.socket] = []
    try:
        proxy.start(port)
        for _ in range(2):
            c = socket.create_connection(("127.0.0.1", port.host_port), timeout=5)
            clients.append(c)
            c.sendall(b"x")
        for _ in range(100):  # both relayed to the container
            if len(accepted) == 2:
                break
            threading.Event().wait(0.05)
        assert len(accepted) == 2
        extra = socket.create_connection(("127.0.0.1", port.host_port), timeout=5)
        clients.append(extra)
        assert extra.recv(10) == b""  # closed by the proxy at once
        assert len(accepted) == 2
        accepted[0].sendall(b"still")  # the first two still copied
        assert clients[0].recv(10) == b"still"
    finally:
        for c in clients + accepted:
            c.close()
        server.close()
