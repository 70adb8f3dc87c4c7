"""The management API's system and container endpoints (/api/v1) through the gate: the envelope on every
answer (unknown paths, wrong methods, bad parameters), scopes, rate-limit headers, pagination and the
reference's fields."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servin.access.durations import Rate
from servin.access.scopes import Scope
from servin.api.context import SERVICES
from servin.daemon import wiring
from servin.daemon.config import DaemonConfig
from tests.api.conftest import Env


class Manage:
    def __init__(self, client: TestClient, headers: dict[str, str], read: dict[str, str],
                 admin: dict[str, str]) -> None:
        self.client, self.headers, self.read, self.admin = client, headers, read, admin

    async def get(self, path: str, status: int = 200, **params: Any) -> Any:
        r = await self.client.get(f"/api/v1{path}", params=params, headers=self.headers)
        return await envelope_of(r, status)

    async def post(self, path: str, status: int = 200, **params: Any) -> Any:
        r = await self.client.post(f"/api/v1{path}", params=params, headers=self.headers)
        return await envelope_of(r, status)


async def envelope_of(r: aiohttp.ClientResponse, status: int) -> Any:
    """`data` of a success, `error` of a failure; the envelope and the rate-limit headers checked."""
    assert r.status == status, await r.text()
    assert r.headers["Content-Type"] == "application/json"
    for header in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"):
        assert header in r.headers, (header, dict(r.headers))
    body = await r.json()
    assert set(body) == {"success", "data", "error"}
    if status < 400:
        assert body["success"] is True and body["error"] is None
        return body["data"]
    assert body["success"] is False and body["data"] is None
    assert set(body["error"]) >= {"code", "message"}
    return body["error"]


@pytest.fixture
async def api(env: Env) -> AsyncIterator[Manage]:
    gate = wiring.build_gate(DaemonConfig(data_root=env.tmp / "access"))
    _k, write = gate.keys.generate(name="w", scope=Scope.WRITE)
    _k, read = gate.keys.generate(name="r", scope=Scope.READ)
    _k, admin = gate.keys.generate(name="a", scope=Scope.ADMIN)
    client = TestClient(TestServer(wiring.build_api(env.client.server.app[SERVICES], gate)))
    await client.start_server()
    try:
        yield Manage(client, {"X-API-Key": write}, {"X-API-Key": read}, {"X-API-Key": admin})
    finally:
        await client.close()


# ---- the rules every endpoint follows ----------------------------------------------------------------

@pytest.mark.parametrize("method,path,status,code", [
    ("GET", "/api/v1/nothing-here", 404, "RESOURCE_NOT_FOUND"),
    ("GET", "/api/v2/containers", 404, "RESOURCE_NOT_FOUND"),
    ("DELETE", "/api/v1/system/info", 405, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers/nosuch", 404, "RESOURCE_NOT_FOUND"),
    ("POST", "/api/v1/containers/nosuch/start", 404, "RESOURCE_NOT_FOUND"),
    ("GET", "/api/v1/containers?page=0", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?limit=101", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?limit=x", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?all=maybe", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?filter=status", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?filter=status=sleepy", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?filter=colour=red", 400, "INVALID_PARAMETER"),
    ("GET", "/api/v1/containers?filter=name=(", 400, "INVALID_PARAMETER"),
])
async def test_every_failure_is_an_envelope(api: Manage, method: str, path: str, status: int, code: str) -> None:
    r = await api.client.request(method, path, headers=api.headers)
    error = await envelope_of(r, status)
    assert error["code"] == code


async def test_a_body_over_the_limit_is_an_envelope_413(api: Manage) -> None:
    r = await api.client.post("/api/v1/keys", data=b"x" * (9 << 20), headers={**api.admin,
                                                                              "Content-Type": "application/json"})
    assert r.status == 413
    assert (await r.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_credentials_scopes_and_limits(api: Manage, env: Env) -> None:
    r = await api.client.get("/api/v1/system/info")
    assert r.status == 401 and (await r.json())["error"]["code"] == "AUTHENTICATION_FAILED"
    r = await api.client.get("/api/v1/system/info", params={"api_key": api.read["X-API-Key"]})
    await envelope_of(r, 200)
    cid = await env.create("web", Cmd=["sleep", "1"])
    r = await api.client.post(f"/api/v1/containers/{cid}/start", headers=api.read)
    assert (await envelope_of(r, 403))["code"] == "AUTHORIZATION_FAILED"
    r = await api.client.get("/api/v1/containers/web", headers=api.read)
    await envelope_of(r, 200)


async def test_rate_limit_exceeded(env: Env) -> None:
    gate = wiring.build_gate(DaemonConfig(data_root=env.tmp / "access"))
    _k, text = gate.keys.generate(name="slow", scope=Scope.READ, rate_limit=Rate.parse("2/m"))
    async with TestClient(TestServer(wiring.build_api(env.client.server.app[SERVICES], gate))) as client:
        for expected in (200, 200, 429):
            r = await client.get("/api/v1/system/status", headers={"X-API-Key": text})
            body = await envelope_of(r, expected)
        assert body["code"] == "RATE_LIMIT_EXCEEDED" and r.headers["X-RateLimit-Remaining"] == "0"


# ---- system ----------------------------------------------------------------------------------------------

async def test_system_info(api: Manage) -> None:
    data = await api.get("/system/info")
    assert set(data) == {"version", "docker_version", "platform", "cpu_count", "memory_total", "disk_free"}
    assert data["docker_version"] == "1.55" and data["platform"] == "linux"
    assert data["cpu_count"] == 4 and data["memory_total"] == 8 << 30 and data["disk_free"] > 0


async def test_system_status(api: Manage) -> None:
    data = await api.get("/system/status")
    assert data["services"] == {"api": "running", "daemon": "running", "docker_connection": "connected"}
    assert isinstance(data["status"], str) and isinstance(data["uptime"], int) and data["uptime"] >= 0


async def test_system_stats(api: Manage, env: Env) -> None:
    await env.run("aa", Cmd=["sleep", "1"])
    await env.create("bb")
    data = await api.get("/system/stats")
    assert set(data) == {"timestamp", "cpu", "memory", "disk", "network", "containers"}
    assert data["timestamp"].endswith("Z")
    assert 0 <= data["cpu"]["usage_percent"] <= 100 and data["cpu"]["cores"] == 4
    for part in ("memory", "disk"):
        assert set(data[part]) == {"total", "used", "free", "usage_percent"}
        assert data[part]["total"] > 0 and 0 <= data[part]["usage_percent"] <= 100
    assert set(data["network"]) == {"rx_bytes", "tx_bytes"}
    assert data["containers"] == {"total": 2, "running": 1, "paused": 0, "stopped": 1}


# ---- containers ------------------------------------------------------------------------------------------

async def test_list_filters_and_pagination(api: Manage, env: Env) -> None:
    for i in range(5):
        await env.run(f"up{i}", Cmd=["sleep", "1"])
    await env.create("idle")
    data = await api.get("/containers")
    assert data["pagination"] == {"page": 1, "limit": 20, "total": 5, "pages": 1}
    item = data["items"][0]
    assert set(item) == {"id", "name", "image", "status", "created", "ports"}
    assert item["status"] == "running" and item["image"] == "busybox"
    data = await api.get("/containers", all="true", limit="4", page="2")
    assert data["pagination"] == {"page": 2, "limit": 4, "total": 6, "pages": 2}
    assert len(data["items"]) == 2
    data = await api.get("/containers", page="9")
    assert data["items"] == [] and data["pagination"]["total"] == 5
    r = await api.client.get("/api/v1/containers", params=[("filter", "status=created")], headers=api.headers)
    data = await envelope_of(r, 200)
    assert [i["name"] for i in data["items"]] == ["idle"]
    r = await api.client.get("/api/v1/containers", params=[("all", "1"), ("filter", "name=up1"),
                                                           ("filter", "status=running")], headers=api.headers)
    assert [i["name"] for i in (await envelope_of(r, 200))["items"]] == ["up1"]


async def test_detail_by_id_short_id_and_name(api: Manage, env: Env) -> None:
    cid = await env.run("web", Cmd=["sleep", "1"], Env=["GREETING=hi=there"], HostConfig={"Memory": 64 << 20})
    for ref in (cid, cid[:12], "web"):
        data = await api.get(f"/containers/{ref}")
        assert data["id"] == cid and data["name"] == "web" and data["status"] == "running"
    assert {"key": "GREETING", "value": "hi=there"} in data["environment"]
    assert data["started"].startswith("20")
    assert isinstance(data["networks"], list) and data["volumes"] == []
    assert set(data["resource_usage"]) == {"cpu_percent", "memory_usage", "memory_limit", "memory_percent",
                                           "network_rx", "network_tx", "block_read", "block_write"}
    assert data["resource_usage"]["memory_limit"] == 64 << 20


async def test_start_stop_restart(api: Manage, env: Env) -> None:
    cid = await env.create("web", Cmd=["sleep", "1"])
    assert await api.post("/containers/web/start") == {"id": cid, "name": "web", "status": "running"}
    assert (await api.post("/containers/web/start"))["status"] == "running"  # already running
    assert await api.post("/containers/web/stop", timeout="1") == {"id": cid, "name": "web", "status": "stopped"}
    assert (await api.post("/containers/web/stop"))["status"] == "stopped"
    assert (await api.post("/containers/web/restart", timeout="0"))["status"] == "running"
    assert (await api.post("/containers/web/stop", timeout="soon", status=400))["code"] == "INVALID_PARAMETER"


async def test_logs(api: Manage, env: Env) -> None:
    cid = await env.run("talk", Cmd=["sh", "-c", "echo one; echo two >&2; echo three"])
    await env.wait_exited(cid)
    data = await api.get("/containers/talk/logs")
    assert [(e["stream"], e["message"]) for e in data["logs"]] == [
        ("stdout", "one"), ("stderr", "two"), ("stdout", "three")]
    assert all(e["timestamp"].endswith("Z") for e in data["logs"])
    assert [e["message"] for e in (await api.get("/containers/talk/logs", stderr="false"))["logs"]] == [
        "one", "three"]
    assert [e["message"] for e in (await api.get("/containers/talk/logs", tail="1"))["logs"]] == ["three"]
    assert (await api.get("/containers/talk/logs", until="1"))["logs"] == []
    assert (await api.get("/containers/talk/logs", since="yesterday", status=400))["code"] == "INVALID_PARAMETER"


async def test_logs_follow_streams_ndjson_envelopes(api: Manage, env: Env) -> None:
    cid = await env.run("talk", Cmd=["sh", "-c", "echo one; echo two"])
    await env.wait_exited(cid)
    r = await api.client.get("/api/v1/containers/talk/logs", params={"follow": "true"}, headers=api.headers)
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in (await asyncio.wait_for(r.read(), 5)).splitlines()]
    assert all(line["success"] is True and line["error"] is None for line in lines)
    assert [e["message"] for line in lines for e in line["data"]["logs"]] == ["one", "two"]


async def test_the_unix_socket_needs_no_key_but_is_limited(env: Env, tmp_path: Path) -> None:
    """As docs/securing.md says of the socket (auth-unix "none"): its mode and group are the credential;
    the management API still rate-limits it and says so in its headers."""
    gate = wiring.build_gate(DaemonConfig(data_root=tmp_path / "root"))
    runner = web.AppRunner(wiring.build_api(env.client.server.app[SERVICES], gate))
    await runner.setup()
    await web.UnixSite(runner, str(tmp_path / "s.sock")).start()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(tmp_path / "s.sock"))) as s:
            async with s.get("http://servin/api/v1/system/status") as r:
                assert (await envelope_of(r, 200))["services"]["api"] == "running"
                assert r.headers["X-RateLimit-Limit"] == "100"
            async with s.get("http://servin/_ping") as r:
                assert r.status == 200 and "X-RateLimit-Limit" not in r.headers
    finally:
        await runner.cleanup()
