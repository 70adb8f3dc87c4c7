"""The management API against a real daemon with curl: a key made on the unix socket, then /api/v1's system
and container endpoints on a TCP listener that requires it, real containers underneath."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_access import Listener
from tests.e2e.test_tls import free_port
from tests.support.daemon import running_daemon

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tcp() -> Iterator[Listener]:
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}")) as d:
        yield Listener(d, port)


def call(tcp: Listener, method: str, path: str, key: str, status: int = 200) -> Any:
    code, headers, body = tcp.curl(method, f"/api/v1{path}", headers={"X-API-Key": key})
    assert code == status, body
    assert {"x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} <= set(headers)
    assert set(body) == {"success", "data", "error"} and body["success"] is (status < 400), body
    return body["data"] if status < 400 else body["error"]


def test_system_endpoints(tcp: Listener) -> None:
    read = tcp.new_key(scope="read")["key"]
    info = call(tcp, "GET", "/system/info", read)
    assert info["docker_version"] == "1.55" and info["cpu_count"] >= 1
    assert info["memory_total"] > 0 and info["disk_free"] > 0
    status = call(tcp, "GET", "/system/status", read)
    assert status["services"]["docker_connection"] == "connected" and status["uptime"] >= 0
    stats = call(tcp, "GET", "/system/stats", read)
    assert stats["memory"]["total"] == info["memory_total"] and stats["memory"]["used"] > 0
    assert stats["disk"]["free"] > 0 and stats["network"]["rx_bytes"] >= 0
    assert 0 <= stats["cpu"]["usage_percent"] <= 100
    assert call(tcp, "GET", "/nope", read, 404)["code"] == "RESOURCE_NOT_FOUND"
    assert tcp.curl("GET", "/api/v1/system/info")[0] == 401


def test_container_endpoints(tcp: Listener) -> None:
    write = tcp.new_key(scope="write")["key"]
    read = tcp.new_key(scope="read")["key"]
    tcp.d.docker("run", "-d", "--name", "mgmt-web", "-e", "MODE=e2e", "busybox", "sh", "-c",
                 "echo started; echo oops >&2; exec sleep 300")
    try:
        listed = call(tcp, "GET", "/containers?filter=name=mgmt-web", read)
        assert [i["name"] for i in listed["items"]] == ["mgmt-web"]
        assert listed["pagination"] == {"page": 1, "limit": 20, "total": 1, "pages": 1}
        detail = call(tcp, "GET", "/containers/mgmt-web", read)
        assert detail["status"] == "running" and {"key": "MODE", "value": "e2e"} in detail["environment"]
        assert detail["networks"][0]["name"] == "bridge" and detail["networks"][0]["ip_address"]
        usage = detail["resource_usage"]
        assert usage["memory_usage"] > 0 and usage["memory_limit"] > 0 and usage["cpu_percent"] >= 0
        deadline = time.monotonic() + 10
        while len(call(tcp, "GET", "/containers/mgmt-web/logs", read)["logs"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        logs = call(tcp, "GET", "/containers/mgmt-web/logs", read)["logs"]
        assert [(e["stream"], e["message"]) for e in logs] == [("stdout", "started"), ("stderr", "oops")]
        assert call(tcp, "POST", "/containers/mgmt-web/stop", read, 403)["code"] == "AUTHORIZATION_FAILED"
        assert call(tcp, "POST", "/containers/mgmt-web/stop?timeout=1", write)["status"] == "stopped"
        assert call(tcp, "GET", "/containers/mgmt-web", read)["status"] == "stopped"
        assert call(tcp, "POST", "/containers/mgmt-web/start", write)["status"] == "running"
        assert call(tcp, "POST", "/containers/mgmt-web/restart?timeout=1", write)["status"] == "running"
        follow = subprocess.run(["curl", "-sS", "-m", "2", "-H", f"X-API-Key: {read}",
                                 f"{tcp.url}/api/v1/containers/mgmt-web/logs?follow=true&tail=1"],
                                capture_output=True, timeout=30)
        lines = [json.loads(line) for line in follow.stdout.splitlines()]  # curl gives up after 2 s: it follows
        assert lines and all(line["success"] is True for line in lines)
    finally:
        tcp.d.docker("rm", "-f", "mgmt-web", check=False)


def test_the_dedicated_listener(tmp_path_factory: pytest.TempPathFactory) -> None:
    """`--management-host` serves /api/v1 only; its port is reserved against published ports."""
    docker_port, port = free_port(), free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{docker_port}",
                         "--management-host", f"tcp://127.0.0.1:{port}")) as d:
        listener = Listener(d, port)
        read = listener.new_key(scope="read")["key"]
        assert call(listener, "GET", "/system/status", read)["status"]
        status, _h, body = listener.curl("GET", "/v1.41/containers/json", headers={"X-API-Key": read})
        assert status == 404 and "management API" in body["message"]
        assert Listener(d, docker_port).curl("GET", "/_ping", headers={"X-API-Key": read})[0] == 200
        res = d.docker("run", "-d", "-p", f"127.0.0.1:{port}:80", "busybox", "sleep", "1", check=False)
        assert res.returncode != 0 and b"the daemon listens on" in res.stderr, res.stderr
