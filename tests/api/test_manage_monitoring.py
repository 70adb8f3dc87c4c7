"""The management API's container stats (one reading, and NDJSON envelopes with stream=true), the connection
troubleshooter over the daemon's self-check, and the codes of the one error table: a conflict is
OPERATION_IN_PROGRESS, a start the runtime refused OPERATION_FAILED (Docker's API keeps its status and
message, only `code` names the category)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servin.access.scopes import Scope
from servin.api.context import SERVICES
from servin.core.views import ResourceStats
from servin.daemon import wiring
from servin.daemon.config import DaemonConfig
from tests.api.conftest import FACTS, Env
from tests.api import test_manage
from tests.api.test_manage import Manage, envelope_of

api = test_manage.api  # the fixture: an app with the management API and a write key

SAMPLE = ResourceStats(
    cpu_usage_ns=5_000_000, memory_usage=3 << 20, memory_limit=64 << 20, pids_current=2, oom_kills=0,
    cpu_user_ns=4_000_000, cpu_system_ns=1_000_000, percpu_ns=(3_000_000, 2_000_000), memory_max_usage=4 << 20,
    memory_detail={"anon": 2 << 20, "file": 1 << 20},
    throttling={"nr_periods": 7, "nr_throttled": 2, "throttled_time": 900},
    io_service_bytes=((8, 0, "Read", 4096), (8, 0, "Write", 512), (8, 0, "Total", 4608), (8, 16, "read", 100)),
    io_serviced=((8, 0, "Read", 3), (8, 0, "Write", 1), (8, 16, "read", 2)),
)
KEYS = {"id", "name", "timestamp", "cpu_stats", "memory_stats", "network_stats", "io_stats"}


@pytest.fixture
def readings(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake runtime's readings of a running container are SAMPLE; two interfaces' counters."""
    real = env.runtime.stats
    monkeypatch.setattr(env.runtime, "stats", lambda cid: SAMPLE if real(cid) is not None else None)
    counters = {"eth0": {"rx_bytes": 100, "rx_packets": 2, "tx_bytes": 50, "tx_packets": 1, "rx_errors": 0,
                         "rx_dropped": 1, "tx_errors": 0, "tx_dropped": 0},
                "eth1": {"rx_bytes": 1, "rx_packets": 1, "tx_bytes": 2, "tx_packets": 1, "rx_errors": 3,
                         "rx_dropped": 0, "tx_errors": 0, "tx_dropped": 4}}
    monkeypatch.setattr(env.engine.networking, "stats", lambda cid: counters)


async def test_stats_of_a_running_container(api: Manage, env: Env, readings: None) -> None:
    cid = await env.run("web", Cmd=["sleep", "1"])
    data = await api.get("/containers/web/stats")
    assert set(data) == KEYS and data["id"] == cid and data["name"] == "web" and data["timestamp"].endswith("Z")
    cpu = data["cpu_stats"]
    assert cpu["cpu_usage"] == {"total_usage": 5_000_000, "percpu_usage": [3_000_000, 2_000_000],
                                "usage_in_kernelmode": 1_000_000, "usage_in_usermode": 4_000_000}
    assert cpu["system_cpu_usage"] > 0 and cpu["online_cpus"] == FACTS.ncpu
    assert cpu["throttling_data"] == {"periods": 7, "throttled_periods": 2, "throttled_time": 900}
    assert data["memory_stats"] == {"usage": 3 << 20, "max_usage": 4 << 20, "limit": 64 << 20,
                                    "stats": {"anon": 2 << 20, "file": 1 << 20}}
    assert data["network_stats"] == {"rx_bytes": 101, "rx_packets": 3, "rx_errors": 3, "rx_dropped": 1,
                                     "tx_bytes": 52, "tx_packets": 2, "tx_errors": 0, "tx_dropped": 4}
    assert data["io_stats"] == {"read": {"ops": 5, "bytes": 4196}, "write": {"ops": 1, "bytes": 512}}
    assert (await api.get(f"/containers/{cid[:12]}/stats", stream="false"))["id"] == cid


async def test_stats_of_a_stopped_container_are_zeros(api: Manage, env: Env, readings: None) -> None:
    await env.create("idle")
    data = await api.get("/containers/idle/stats")
    assert data["cpu_stats"] == {"cpu_usage": {"total_usage": 0, "percpu_usage": [], "usage_in_kernelmode": 0,
                                               "usage_in_usermode": 0},
                                 "system_cpu_usage": 0, "online_cpus": 0,
                                 "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}
    assert data["memory_stats"] == {"usage": 0, "max_usage": 0, "limit": 0, "stats": {}}
    assert set(data["network_stats"].values()) == {0}
    assert data["io_stats"] == {"read": {"ops": 0, "bytes": 0}, "write": {"ops": 0, "bytes": 0}}


async def test_stats_errors(api: Manage) -> None:
    assert (await api.get("/containers/nosuch/stats", status=404))["code"] == "RESOURCE_NOT_FOUND"
    assert (await api.get("/containers/nosuch/stats", status=400, stream="always"))["code"] == "INVALID_PARAMETER"


async def test_stats_stream_one_envelope_a_second_until_the_client_leaves(api: Manage, env: Env,
                                                                          readings: None) -> None:
    cid = await env.run("web", Cmd=["sleep", "1"])
    r = await api.client.get("/api/v1/containers/web/stats", params={"stream": "true"}, headers=api.headers)
    assert r.status == 200 and r.headers["Content-Type"] == "application/x-ndjson"
    loop = asyncio.get_running_loop()
    started = loop.time()
    lines = [json.loads(await asyncio.wait_for(r.content.readline(), 5)) for _ in range(3)]
    assert 1.5 < loop.time() - started < 4.5  # the first at once, then one a second
    for line in lines:
        assert line["success"] is True and line["error"] is None and set(line["data"]) == KEYS
        assert line["data"]["id"] == cid and line["data"]["memory_stats"]["usage"] == 3 << 20
    r.close()  # the client leaves: the daemon's stream ends with it (the next call is answered as usual)
    assert (await api.get("/containers/web/stats"))["id"] == cid


async def test_stats_stream_ends_when_the_container_is_removed(api: Manage, env: Env) -> None:
    cid = await env.create("brief")
    r = await api.client.get("/api/v1/containers/brief/stats", params={"stream": "1"}, headers=api.headers)
    first = json.loads(await asyncio.wait_for(r.content.readline(), 5))
    assert first["data"]["memory_stats"]["usage"] == 0
    assert (await env.client.delete(f"/containers/{cid}")).status == 204
    rest = await asyncio.wait_for(r.read(), 5)  # at most one more reading, then the end
    assert len(rest.splitlines()) <= 1


# ---- troubleshoot ----------------------------------------------------------------------------------------

async def connection(env: Env, config: DaemonConfig) -> dict[str, object]:
    gate = wiring.build_gate(DaemonConfig(data_root=env.tmp / "access"))
    _k, key = gate.keys.generate(name="r", scope=Scope.READ)
    app = wiring.build_api(env.client.server.app[SERVICES], gate, config)
    async with TestClient(TestServer(app)) as client:
        r = await client.get("/api/v1/monitoring/troubleshoot/connection", headers={"X-API-Key": key})
        data = await envelope_of(r, 200)
    assert set(data) == {"connected", "issues", "fixes"}
    return data


async def test_troubleshoot_a_daemon_whose_socket_is_there(env: Env, tmp_path: Path) -> None:
    sock = tmp_path / "servin.sock"
    runner = web.AppRunner(web.Application())
    await runner.setup()
    await web.UnixSite(runner, str(sock)).start()
    sock.chmod(0o660)
    try:
        data = await connection(env, DaemonConfig(hosts=(f"unix://{sock}",), management_hosts=(),
                                                  data_root=tmp_path))
    finally:
        await runner.cleanup()
    socket_issues = [i for i in data["issues"] if "socket" in i]  # type: ignore[union-attr]
    assert socket_issues == [] and isinstance(data["connected"], bool)


async def test_troubleshoot_a_missing_socket_and_a_missing_group(env: Env, tmp_path: Path) -> None:
    sock = tmp_path / "gone.sock"
    data = await connection(env, DaemonConfig(hosts=(f"unix://{sock}",), management_hosts=(), data_root=tmp_path,
                                              group="servin-no-such-group"))
    assert data["connected"] is False
    assert f"the socket {sock} does not exist: Servin is not listening there" in data["issues"]  # type: ignore
    assert "sudo systemctl start servin" in data["fixes"]  # type: ignore[operator]


# ---- the codes of the one table -------------------------------------------------------------------------

async def test_a_start_the_runtime_refuses_is_operation_failed(api: Manage, env: Env) -> None:
    cid = await env.create("bad", Cmd=["nope"])
    env.runtime.fail_next_start = (127, 'exec: "nope": executable file not found in $PATH')
    error = await api.post("/containers/bad/start", status=500)
    assert error["code"] == "OPERATION_FAILED" and 'exec: "nope": executable file not found' in error["message"]
    env.runtime.fail_next_start = (127, 'exec: "nope": executable file not found in $PATH')
    r = await env.client.post(f"/containers/{cid}/start")  # Docker's API: dockerd's 400 and message
    assert r.status == 400 and (await r.json())["message"].startswith("OCI runtime create failed")


async def test_a_conflict_is_operation_in_progress_on_both_apis(api: Manage, env: Env) -> None:
    cid = await env.run("busy", Cmd=["sleep", "1"])
    r = await env.client.delete(f"/containers/{cid}")
    body = await r.json()
    assert r.status == 409 and body["code"] == "OPERATION_IN_PROGRESS"
    assert body["message"].startswith(f"You cannot remove a running container {cid}.")  # dockerd's words
    assert (await api.get("/containers/busy"))["status"] == "running"
