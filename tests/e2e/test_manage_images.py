"""The management API's container stats, image endpoints and connection troubleshooter against a real daemon
with curl: stats of a running busybox, a pull from Debian's docker-registry on 127.0.0.1 (and 502
DOCKER_ERROR once it is down), the pulled image listed, shown and removed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_access import Listener
from tests.e2e.test_tls import free_port
from tests.registry.server import REGISTRY_BIN, running_registry
from tests.support.daemon import running_daemon

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tcp() -> Iterator[Listener]:
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}")) as d:
        yield Listener(d, port)


def call(tcp: Listener, method: str, path: str, key: str, status: int = 200, body: Any = None) -> Any:
    code, _headers, answer = tcp.curl(method, f"/api/v1{path}", headers={"X-API-Key": key}, body=body)
    assert code == status, answer
    assert set(answer) == {"success", "data", "error"} and answer["success"] is (status < 400), answer
    return answer["data"] if status < 400 else answer["error"]


def test_stats_of_a_running_busybox(tcp: Listener) -> None:
    read = tcp.new_key(scope="read")["key"]
    tcp.d.docker("run", "-d", "--name", "mgmt-stats", "busybox", "sh", "-c",
                 "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo x > /tmp/f; exec sleep 300")
    try:
        data = call(tcp, "GET", "/containers/mgmt-stats/stats", read)
        assert data["name"] == "mgmt-stats" and data["timestamp"].endswith("Z")
        memory = data["memory_stats"]
        assert memory["usage"] > 0 and memory["limit"] > 0 and memory["stats"]
        cpu = data["cpu_stats"]
        assert cpu["cpu_usage"]["total_usage"] > 0 and cpu["system_cpu_usage"] > 0 and cpu["online_cpus"] >= 1
        assert set(data["network_stats"]) == {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                                              "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}
        assert set(data["io_stats"]) == {"read", "write"}
        stream = subprocess.run(["curl", "-sS", "-m", "2.5", "-H", f"X-API-Key: {read}",
                                 f"{tcp.url}/api/v1/containers/mgmt-stats/stats?stream=true"],
                                capture_output=True, timeout=30)
        lines = [json.loads(line) for line in stream.stdout.splitlines()]  # curl gives up after 2.5 s
        assert 2 <= len(lines) <= 4 and all(line["data"]["memory_stats"]["usage"] > 0 for line in lines)
        tcp.d.docker("stop", "-t", "1", "mgmt-stats")
        stopped = call(tcp, "GET", "/containers/mgmt-stats/stats", read)
        assert stopped["memory_stats"] == {"usage": 0, "max_usage": 0, "limit": 0, "stats": {}}
        assert stopped["cpu_stats"]["cpu_usage"]["total_usage"] == 0
    finally:
        tcp.d.docker("rm", "-f", "mgmt-stats", check=False)


@pytest.mark.skipif(not os.path.exists(REGISTRY_BIN), reason="docker-registry is not installed")
def test_pull_list_show_and_remove_an_image(tcp: Listener) -> None:
    write = tcp.new_key(scope="write")["key"]
    with running_registry() as registry:
        name = f"localhost:{registry.port}/e2e/box"
        tcp.d.docker("tag", "busybox", f"{name}:1")
        tcp.d.docker("push", f"{name}:1")
        tcp.d.docker("rmi", f"{name}:1")
        pulled = call(tcp, "POST", "/images/pull", write, body={"repository": name, "tag": "1"})
        busybox = call(tcp, "GET", "/images/busybox", write)
        assert pulled == {"id": busybox["id"], "repository": name, "tag": "1", "size": busybox["size"]}
        listed = call(tcp, "GET", f"/images?filter=reference={name}", write)
        assert [(i["repository"], i["tag"]) for i in listed["items"]] == [(name, "1")]
        detail = call(tcp, "GET", f"/images/{name}:1", write)
        assert (detail["repository"], detail["tag"], detail["os"]) == (name, "1", "linux")
        assert detail["history"] and detail["config"]["cmd"] == busybox["config"]["cmd"]
        error = call(tcp, "POST", "/images/pull", write, 404, body={"repository": name, "tag": "nope"})
        assert error["code"] == "RESOURCE_NOT_FOUND" and "not found" in error["message"]
        error = call(tcp, "POST", "/images/pull", write, 400, body={"repository": name, "digest": "x"})
        assert error["code"] == "VALIDATION_ERROR" and "digest" in error["message"]
        removed = call(tcp, "DELETE", f"/images/{name}:1", write)
        assert (removed["id"], removed["repository"], removed["tag"]) == (busybox["id"], name, "1")
        assert f"{name}:1" in removed["untagged"] and removed["deleted"] == []  # busybox:latest keeps it
        assert call(tcp, "GET", f"/images/{name}:1", write, 404)["code"] == "RESOURCE_NOT_FOUND"
        port = registry.port
    error = call(tcp, "POST", "/images/pull", write, 502, body={"repository": f"localhost:{port}/e2e/box", "tag": "1"})
    assert error["code"] == "DOCKER_ERROR" and f"localhost:{port}" in error["message"]


def test_an_image_in_use_is_not_removed(tcp: Listener) -> None:
    write = tcp.new_key(scope="write")["key"]
    tcp.d.docker("run", "--name", "mgmt-src", "busybox", "touch", "/made")
    tcp.d.docker("commit", "mgmt-src", "inuse:1")  # an image with one tag only
    tcp.d.docker("run", "-d", "--name", "mgmt-user", "inuse:1", "sleep", "300")
    try:
        error = call(tcp, "DELETE", "/images/inuse:1", write, 409)
        assert error["code"] == "OPERATION_IN_PROGRESS" and "is using its referenced image" in error["message"]
        assert call(tcp, "GET", "/images/inuse:1", write)["tag"] == "1"
    finally:
        tcp.d.docker("rm", "-f", "mgmt-user", "mgmt-src", check=False)
        tcp.d.docker("rmi", "inuse:1", check=False)


def test_troubleshoot_connection(tcp: Listener) -> None:
    read = tcp.new_key(scope="read")["key"]
    data = call(tcp, "GET", "/monitoring/troubleshoot/connection", read)
    assert set(data) == {"connected", "issues", "fixes"} and data["connected"] is True, data
    assert not any(str(tcp.d.socket) in issue or f":{tcp.port}" in issue for issue in data["issues"]), data
