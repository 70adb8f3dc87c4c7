"""/api/v1/webhooks through the gate (admin keys only), and deliveries to a real HTTP receiver on 127.0.0.1
that checks every signature: the events of the Docker API's own calls, a receiver that fails for a while,
an answer 500 as system.error."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from servin.access.scopes import Scope
from servin.cli.main import main
from servin.api.context import SERVICES
from servin.daemon import wiring
from servin.daemon.config import DaemonConfig
from servin.manage.delivery import RetryPolicy, verify
from servin.manage.webhooks import Webhooks
from tests.api.conftest import Env
from tests.api.test_manage import envelope_of


class Receiver:
    """An HTTP server recording what it is posted; answers `fail` (a status) while set."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail: int | None = None
        self.server = TestServer(web.Application())
        self.server.app.router.add_post("/hook", self.hook)

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.got.append({"headers": dict(request.headers), "body": body, "failed": self.fail is not None})
        return web.Response(status=self.fail or 204)

    @property
    def url(self) -> str:
        return str(self.server.make_url("/hook"))

    def delivered(self) -> list[dict[str, Any]]:
        return [json.loads(g["body"]) for g in self.got if not g["failed"]]

    async def until(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        for _ in range(int(timeout / 0.02)):
            if len(self.delivered()) >= n:
                break
            await asyncio.sleep(0.02)
        return self.delivered()


class Hooks:
    def __init__(self, client: TestClient, keys: dict[str, dict[str, str]], service: Webhooks) -> None:
        self.client, self.keys, self.service = client, keys, service

    async def call(self, method: str, path: str, status: int = 200, scope: str = "admin", **kw: Any) -> Any:
        r = await self.client.request(method, f"/api/v1/webhooks{path}", headers=self.keys[scope], **kw)
        return await envelope_of(r, status)


@pytest.fixture
async def hooks(env: Env) -> AsyncIterator[Hooks]:
    gate = wiring.build_gate(DaemonConfig(data_root=env.tmp / "access"))
    keys = {s: {"X-API-Key": gate.keys.generate(name=s, scope=Scope.parse(s))[1]} for s in ("read", "write", "admin")}
    service = Webhooks(env.tmp / "webhooks", env.events, policy=RetryPolicy(first_delay=0.05, max_delay=0.2))
    await service.start()
    app = wiring.build_api(env.client.server.app[SERVICES], gate, webhooks=service, events=env.events)

    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    app.router.add_get("/boom", boom)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Hooks(client, keys, service)
    finally:
        await client.close()
        await service.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    await r.server.start_server()
    try:
        yield r
    finally:
        await r.server.close()


async def test_create_list_get_remove(hooks: Hooks, receiver: Receiver) -> None:
    made = await hooks.call("POST", "", 201, json={"url": receiver.url, "events": ["container.start"]})
    assert set(made) == {"id", "url", "events", "created", "active", "deliveries", "secret"}
    assert made["secret"].startswith("whsec_") and made["events"] == ["container.start"] and made["active"]
    given = await hooks.call("POST", "", 201, json={"url": "https://example.com/x", "events": ["system.error"],
                                                    "secret": "my-own-secret"})
    assert given["secret"] == "my-own-secret"
    listed = await hooks.call("GET", "")
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    assert [i["id"] for i in listed["items"]] == [made["id"], given["id"]]
    assert all("secret" not in i for i in listed["items"])  # shown once, never listed
    page = await hooks.call("GET", "?limit=1&page=2")
    assert [i["id"] for i in page["items"]] == [given["id"]]
    one = await hooks.call("GET", f"/{made['id']}")
    assert one["url"] == receiver.url and "secret" not in one and one["deliveries"] == []
    assert await hooks.call("DELETE", f"/{made['id']}") == {"id": made["id"], "removed": True}
    assert (await hooks.call("GET", f"/{made['id']}", 404))["code"] == "RESOURCE_NOT_FOUND"
    assert (await hooks.call("DELETE", f"/{made['id']}", 404))["code"] == "RESOURCE_NOT_FOUND"
    assert json.loads((hooks.service.store.path).read_text())["webhooks"][0]["id"] == given["id"]


@pytest.mark.parametrize("body, code, words", [
    ({"url": "ftp://h/x", "events": ["container.start"]}, "VALIDATION_ERROR", "scheme must be http or https"),
    ({"url": "http:///x", "events": ["container.start"]}, "VALIDATION_ERROR", "no host"),
    ({"events": ["container.start"]}, "VALIDATION_ERROR", "url is required"),
    ({"url": "http://h/", "events": ["container.start", "container.melt"]}, "VALIDATION_ERROR",
     "unknown event(s): container.melt"),
    ({"url": "http://h/", "events": "container.start"}, "VALIDATION_ERROR", "events is required"),
    ({"url": "http://h/", "events": ["container.start"], "secret": "abc"}, "VALIDATION_ERROR", "secret"),
    ({"url": "http://h/", "events": ["container.start"], "active": False}, "VALIDATION_ERROR",
     "unknown field(s): active"),
])
async def test_bad_webhooks_are_refused_by_name(hooks: Hooks, body: dict[str, Any], code: str, words: str) -> None:
    error = await hooks.call("POST", "", 400, json=body)
    assert error["code"] == code and words in error["message"], error
    assert (await hooks.call("GET", "?limit=500", 400))["code"] == "INVALID_PARAMETER"


@pytest.mark.parametrize("scope", ["read", "write"])
async def test_only_admin_keys_reach_webhooks(hooks: Hooks, scope: str) -> None:
    for method, path, kw in (("GET", "", {}), ("POST", "", {"json": {"url": "http://h/", "events": ["image.pull"]}}),
                             ("GET", "/abc", {}), ("DELETE", "/abc", {})):
        assert (await hooks.call(method, path, 403, scope=scope, **kw))["code"] == "AUTHORIZATION_FAILED"
    r = await hooks.client.get("/api/v1/webhooks")
    assert (await envelope_of(r, 401))["code"] == "AUTHENTICATION_FAILED"


async def test_docker_api_events_are_delivered_signed(hooks: Hooks, receiver: Receiver, env: Env) -> None:
    made = await hooks.call("POST", "", 201, json={"url": receiver.url, "events": [
        "container.create", "container.start", "container.die", "container.destroy", "volume.create"]})
    cid = await env.run("hooked", Cmd=["true"])
    await env.wait_exited(cid)
    r = await env.client.delete(f"/v1.41/containers/{cid}")
    assert r.status == 204
    r = await env.client.post("/v1.41/volumes/create", json={"Name": "vol1"})
    assert r.status == 201
    got = await receiver.until(5)
    assert [(g["event"], g["data"]["id"]) for g in got] == [
        ("container.create", cid), ("container.start", cid), ("container.die", cid), ("container.destroy", cid),
        ("volume.create", "vol1")]
    assert got[0]["data"]["name"] == "hooked" and got[0]["data"]["image"] == "busybox"
    assert got[2]["data"]["status"] == "exited" and got[2]["data"]["exit_code"] == 0
    ids = set()
    for g in receiver.got:
        h = g["headers"]
        assert verify(made["secret"], h["X-Servin-Signature"], g["body"], tolerance=60)
        assert h["Content-Type"] == "application/json" and h["X-Servin-Event"] == json.loads(g["body"])["event"]
        ids.add(h["X-Servin-Delivery"])
    assert len(ids) == 5
    for _ in range(100):
        log = (await hooks.call("GET", f"/{made['id']}"))["deliveries"]
        if len(log) == 5 and all(d["state"] == "delivered" for d in log):
            break
        await asyncio.sleep(0.02)
    assert [d["event"] for d in log] == ["volume.create", "container.destroy", "container.die", "container.start",
                                         "container.create"]  # newest first
    assert set(log[0]) == {"id", "event", "state", "status_code", "attempts", "error", "delivered_at",
                           "last_attempt"}
    assert log[0]["status_code"] == 204 and log[0]["attempts"] == 1 and log[0]["error"] is None


async def test_a_failing_receiver_gets_everything_in_order_later(hooks: Hooks, receiver: Receiver,
                                                                 env: Env) -> None:
    made = await hooks.call("POST", "", 201, json={"url": receiver.url, "events": ["container.create"]})
    receiver.fail = 503
    for n in range(4):
        await env.create(f"c{n}")
    for _ in range(100):
        log = (await hooks.call("GET", f"/{made['id']}"))["deliveries"]
        if log and log[0]["attempts"] >= 3:
            break
        await asyncio.sleep(0.02)
    assert log[0]["state"] == "retrying" and log[0]["status_code"] == 503 and "503" in log[0]["error"]
    assert log[0]["delivered_at"] is None
    receiver.fail = None
    got = await receiver.until(4)
    assert [g["data"]["name"] for g in got] == ["c0", "c1", "c2", "c3"]
    first = [g["headers"]["X-Servin-Delivery"] for g in receiver.got if g["failed"]]
    assert set(first) == {receiver.got[-4]["headers"]["X-Servin-Delivery"]}  # retries of the head only
    assert all(verify(made["secret"], g["headers"]["X-Servin-Signature"], g["body"]) for g in receiver.got)


async def test_an_answer_500_is_a_system_error(hooks: Hooks, receiver: Receiver) -> None:
    await hooks.call("POST", "", 201, json={"url": receiver.url, "events": ["system.error"]})
    r = await hooks.client.get("/boom", headers=hooks.keys["admin"])
    assert r.status == 500
    got = await receiver.until(1)
    assert got[0]["event"] == "system.error"
    data = got[0]["data"]
    assert data["status"] == "error" and data["error"] == "internal_error"
    assert data["message"] == "GET /boom: RuntimeError: a bug"


async def test_the_servin_cli(hooks: Hooks, receiver: Receiver, env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """`servin webhook add|list|remove` against this app on TCP, with an admin key (and refused with a write key)."""
    host = f"tcp://127.0.0.1:{hooks.client.port}"

    async def servin(*argv: str, key: str = "admin") -> tuple[int, str, str]:
        status = await asyncio.to_thread(main, ["-H", host, "--api-key", hooks.keys[key]["X-API-Key"], *argv])
        out, err = capsys.readouterr()
        return status, out, err

    status, out, err = await servin("webhook", "add", "--url", receiver.url, "--events",
                                    "container.create,container.start")
    assert status == 0, err
    hook_id, secret = out.split()
    assert secret.startswith("whsec_") and "will not be shown again" in err
    status, out, _err = await servin("webhook", "list")
    header, row = out.splitlines()
    assert header.split() == ["ID", "URL", "EVENTS", "CREATED", "LAST", "DELIVERY"]
    assert row.split()[:3] == [hook_id, receiver.url, "container.create,container.start"] and row.endswith("none")
    await env.create("via-cli")
    await receiver.until(1)
    for _ in range(100):
        status, out, _err = await servin("webhook", "list")
        if "204 container.create" in out:
            break
        await asyncio.sleep(0.02)
    assert "204 container.create, Less than a second ago" in out or "204 container.create, 1 second ago" in out
    status, out, _err = await servin("webhook", "list", "--format", "json")
    listed = json.loads(out)
    assert listed["id"] == hook_id and "secret" not in listed and listed["deliveries"][0]["status_code"] == 204
    status, out, err = await servin("webhook", "add", "--url", receiver.url, "--events", "container.boom")
    assert status == 1 and "unknown event(s): container.boom" in err
    status, out, err = await servin("webhook", "list", key="write")
    assert status == 1 and "needs admin" in err
    status, out, err = await servin("webhook", "remove", hook_id, "nosuch")
    assert status == 1 and out == f"{hook_id}\n" and "No such webhook: nosuch" in err
    empty = (await servin("webhook", "list"))[1]
    assert empty.splitlines() == ["ID        URL       EVENTS    CREATED   LAST DELIVERY"]


async def test_a_restart_the_policy_cannot_make_is_a_system_error(hooks: Hooks, receiver: Receiver,
                                                                   env: Env) -> None:
    await hooks.call("POST", "", 201, json={"url": receiver.url, "events": ["system.error", "container.die"]})
    cid = await env.run("flaky", Cmd=["sh", "-c", "exit 3"],
                        HostConfig={"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 2}})
    env.runtime.start_failures[cid] = (127, "exec: \"nope\": executable file not found in $PATH")
    got = await receiver.until(2)
    assert [g["event"] for g in got[:2]] == ["container.die", "system.error"]
    data = got[1]["data"]
    assert data["id"] == cid and data["name"] == "flaky" and data["error"] == "restart_failed"
    assert data["message"].startswith(f"restarting {cid[:12]}: ") and "nope" in data["message"]


async def test_a_supervisor_lost_is_a_system_error(hooks: Hooks, receiver: Receiver, env: Env) -> None:
    await hooks.call("POST", "", 201, json={"url": receiver.url, "events": ["system.error"]})
    cid = await env.run("orphan", Cmd=["sleep", "100"])
    env.runtime.shims[cid]._exited.set_exception(ConnectionResetError("the shim's socket closed"))
    got = await receiver.until(1)
    assert got[0]["data"]["error"] == "supervisor_lost" and got[0]["data"]["name"] == "orphan"
    assert "the shim's socket closed" in got[0]["data"]["message"]
    assert (await env.inspect(cid))["State"]["ExitCode"] == 255
