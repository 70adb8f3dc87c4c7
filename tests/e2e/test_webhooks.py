"""Webhooks of a real daemon, made with the `servin` CLI, posting to a receiver on 127.0.0.1 that checks every
signature as the docs tell a user to: the events of `docker run`, a receiver down for a while, a slow one
beside a fast one, and the daemon killed with -9 with deliveries pending (and one in flight)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.daemon import ServinDaemon

pytestmark = pytest.mark.e2e


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's check, written as docs/management-api.md shows it."""
    fields = dict(part.split("=", 1) for part in headers["X-Servin-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


class Receiver:
    """An HTTP server on 127.0.0.1 that records each POST; `delay` seconds before answering 204."""

    def __init__(self, port: int | None = None, delay: float = 0.0) -> None:
        self.port = port or free_port()
        self.delay = delay
        self.got: list[dict[str, Any]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver._lock:
                    receiver.in_flight += 1
                    receiver.max_in_flight = max(receiver.max_in_flight, receiver.in_flight)
                    receiver.got.append({"headers": dict(self.headers), "body": body, "at": time.time()})
                time.sleep(receiver.delay)
                with receiver._lock:
                    receiver.in_flight -= 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(g["body"]) for g in self.got]

    def until(self, n: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.events()

    def check(self, secret: str) -> None:
        for g in self.got:
            assert verified(secret, g["headers"], g["body"]), g
            assert g["headers"]["X-Servin-Event"] == json.loads(g["body"])["event"]
            assert g["headers"]["Content-Type"] == "application/json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


def servin(d: ServinDaemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servin.cli.main", "-H", d.host, *args], capture_output=True,
                          text=True, timeout=30)


def add(d: ServinDaemon, url: str, events: str) -> tuple[str, str]:
    res = servin(d, "webhook", "add", "--url", url, "--events", events)
    assert res.returncode == 0, res.stderr
    hook_id, secret = res.stdout.split()
    return hook_id, secret


def test_docker_run_through_the_cli(daemon: ServinDaemon, receivers: list[Receiver]) -> None:
    r = Receiver().start()
    receivers.append(r)
    hook_id, secret = add(daemon, r.url, "container.create,container.start,container.die,container.destroy")
    daemon.docker("run", "--rm", "--name", "hooked", "busybox", "true")
    got = r.until(4)
    assert [(e["event"], e["data"]["name"], e["data"]["status"]) for e in got] == [
        ("container.create", "hooked", "created"), ("container.start", "hooked", "running"),
        ("container.die", "hooked", "exited"), ("container.destroy", "hooked", "removed")]
    assert len({e["data"]["id"] for e in got}) == 1 and got[2]["data"]["exit_code"] == 0
    r.check(secret)
    assert len({g["headers"]["X-Servin-Delivery"] for g in r.got}) == 4
    deadline = time.monotonic() + 5
    while "204 container.destroy" not in (table := servin(daemon, "webhook", "list").stdout):
        assert time.monotonic() < deadline, table
        time.sleep(0.1)
    assert hook_id in table and r.url in table
    listed = json.loads(servin(daemon, "webhook", "list", "--format", "json").stdout)
    assert "secret" not in listed and [d["event"] for d in listed["deliveries"]][:1] == ["container.destroy"]
    res = servin(daemon, "webhook", "remove", hook_id)
    assert res.returncode == 0 and res.stdout.strip() == hook_id
    daemon.docker("run", "--rm", "busybox", "true")
    time.sleep(0.5)
    assert len(r.got) == 4  # removed: nothing more


def test_a_receiver_down_for_a_while_gets_everything_in_order(daemon: ServinDaemon,
                                                              receivers: list[Receiver]) -> None:
    r = Receiver()
    receivers.append(r)
    _id, secret = add(daemon, r.url, "container.create,container.start,container.die")
    for n in range(3):
        daemon.docker("run", "--name", f"down{n}", "busybox", "true")
    time.sleep(2.5)  # refused for a while: attempts at 0, 1 and 3 s
    table = servin(daemon, "webhook", "list").stdout
    assert "retrying (" in table and "Connect" in table, table
    r.start()
    got = r.until(9)
    assert [(e["event"], e["data"]["name"]) for e in got] == [
        (ev, f"down{n}") for n in range(3) for ev in ("container.create", "container.start", "container.die")]
    r.check(secret)


def test_a_slow_receiver_does_not_hold_up_another(daemon: ServinDaemon, receivers: list[Receiver]) -> None:
    slow, fast = Receiver(delay=1.0).start(), Receiver().start()
    receivers += [slow, fast]
    _s, slow_secret = add(daemon, slow.url, "container.create")
    _f, fast_secret = add(daemon, fast.url, "container.create")
    started = time.monotonic()
    for n in range(4):
        daemon.docker("create", "--name", f"slow{n}", "busybox", "true")
    assert [e["data"]["name"] for e in fast.until(4, timeout=5)] == [f"slow{n}" for n in range(4)]
    fast_done = time.monotonic() - started
    assert len(slow.got) < 4, "the slow receiver kept up?"
    assert [e["data"]["name"] for e in slow.until(4)] == [f"slow{n}" for n in range(4)]
    assert slow.max_in_flight == 1 and fast_done < 3.0
    slow.check(slow_secret)
    fast.check(fast_secret)


def test_kill_9_with_deliveries_pending_and_in_flight(daemon: ServinDaemon, receivers: list[Receiver]) -> None:
    r = Receiver(delay=2.0)
    receivers.append(r)
    _id, secret = add(daemon, r.url, "container.create")
    for n in range(5):
        daemon.docker("create", "--name", f"k{n}", "busybox", "true")
    daemon.kill9()  # all five pending: the receiver was never up
    r.start()
    daemon.start()
    deadline = time.monotonic() + 10
    while not r.got:
        assert time.monotonic() < deadline, daemon.log()
        time.sleep(0.05)
    daemon.kill9()  # the first delivery in flight: the receiver holds it 2 s
    time.sleep(2.5)
    r.delay = 0.0
    daemon.start()
    got = r.until(6)
    time.sleep(0.5)
    names = [e["data"]["name"] for e in r.events()]
    assert names in (["k0", "k0", "k1", "k2", "k3", "k4"], [f"k{n}" for n in range(5)]), names
    ids = [g["headers"]["X-Servin-Delivery"] for g in r.got]
    assert len(set(ids)) == 5 and (len(ids) == 5 or ids[0] == ids[1])  # a repeat is the in-flight one
    assert got and all(e["event"] == "container.create" for e in got)
    r.check(secret)  # signed with the same secret after both restarts
    assert not [p for p in (daemon.data_root / "webhooks" / "queue").iterdir() if p.stat().st_size]


def test_a_restart_that_fails_is_a_system_error(daemon: ServinDaemon, receivers: list[Receiver]) -> None:
    r = Receiver().start()
    receivers.append(r)
    _id, secret = add(daemon, r.url, "system.error")
    # the restart policy's start finds no /bin/sh any more: the container cannot be restarted
    daemon.docker("run", "-d", "--name", "broken", "--restart", "on-failure:3", "busybox", "sh", "-c",
                  "rm /bin/sh; exit 1")
    got = r.until(1, timeout=15)
    assert got, daemon.log()
    data = got[0]["data"]
    assert got[0]["event"] == "system.error" and data["error"] == "restart_failed" and data["name"] == "broken"
    assert data["status"] == "error" and "sh" in data["message"]
    r.check(secret)
    daemon.docker("rm", "-f", "broken")


def test_volume_and_network_events(daemon: ServinDaemon, receivers: list[Receiver]) -> None:
    r = Receiver().start()
    receivers.append(r)
    _id, secret = add(daemon, r.url, "volume.create,volume.remove,network.create,network.remove")
    daemon.docker("volume", "create", "hooked-vol")
    net_id = daemon.docker("network", "create", "hooked-net").stdout.decode().strip()
    daemon.docker("network", "rm", "hooked-net")
    daemon.docker("volume", "rm", "hooked-vol")
    got = r.until(4)
    assert [(e["event"], e["data"]["name"], e["data"]["status"]) for e in got] == [
        ("volume.create", "hooked-vol", "created"), ("network.create", "hooked-net", "created"),
        ("network.remove", "hooked-net", "removed"), ("volume.remove", "hooked-vol", "removed")]
    assert got[1]["data"]["id"] == net_id and got[1]["data"]["driver"] == "bridge"
    assert got[0]["data"]["driver"] == "local"
    r.check(secret)
