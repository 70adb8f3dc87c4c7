"""The gate in front of the Docker API and the management API (/api/v1/keys, /api/v1/tokens): what a
client sees with no, bad, good, wrong-scope and over-limit credentials, over TCP and the unix socket."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from servin.access.durations import Rate
from servin.access.gate import Gate
from servin.access.scopes import Scope
from servin.api.context import SERVICES
from servin.daemon import wiring
from servin.daemon.config import DaemonConfig
from tests.api.conftest import Env

@dataclasses.dataclass
class Access:
    client: TestClient
    gate: Gate
    admin: str  # an admin key's text

    async def new_key(self, **body: Any) -> dict[str, Any]:
        r = await self.client.post("/api/v1/keys", json={"name": "k", **body}, headers=key(self.admin))
        assert r.status == 201, await r.text()
        return (await r.json())["data"]

    def audit_lines(self) -> list[dict[str, Any]]:
        assert self.gate.audit is not None
        self.gate.audit.close()
        return [json.loads(line) for line in self.gate.audit.path.read_text().splitlines()]


def key(text: str) -> dict[str, str]:
    return {"X-API-Key": text}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Make = Callable[..., Awaitable[Access]]


@pytest.fixture
async def make(env: Env) -> AsyncIterator[Make]:
    clients: list[TestClient] = []

    async def make(**config: Any) -> Access:
        gate = wiring.build_gate(DaemonConfig(data_root=env.tmp / f"access{len(clients)}", **config))
        _key, admin = gate.keys.generate(name="admin", scope=Scope.ADMIN)
        client = TestClient(TestServer(wiring.build_api(env.client.server.app[SERVICES], gate)))
        clients.append(client)
        await client.start_server()
        return Access(client=client, gate=gate, admin=admin)

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def access(make: Make) -> Access:
    return await make()


async def assert_error(r: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert r.status == status, await r.text()
    assert r.headers["Content-Type"] == "application/json"
    body = await r.json()
    assert body["code"] == code and isinstance(body["message"], str)
    return body


async def assert_envelope_error(r: aiohttp.ClientResponse, status: int, code: str) -> dict[str, Any]:
    assert r.status == status, await r.text()
    body = await r.json()
    assert body["success"] is False and body["data"] is None and body["error"]["code"] == code, body
    return body["error"]


async def test_tcp_without_a_credential_is_401_with_a_challenge(access: Access) -> None:
    r = await access.client.get("/v1.41/containers/json")
    body = await assert_error(r, 401, "AUTHENTICATION_FAILED")
    assert "authentication required" in body["message"] and "X-API-Key" in body["message"]
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="servin"'
    r = await access.client.get("/_ping")
    assert r.status == 401
    r = await access.client.get("/v1.99/version")  # the gate comes first: nothing is learnt without a credential
    await assert_error(r, 401, "AUTHENTICATION_FAILED")
    r = await access.client.get("/v1.41/nope")
    await assert_error(r, 401, "AUTHENTICATION_FAILED")


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "nope"}, {"X-API-Key": "svk_0123456789ab_" + "A" * 43}, {"Authorization": "Bearer x.y.z"},
    {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
])
async def test_bad_credentials_are_401(access: Access, headers: dict[str, str]) -> None:
    r = await access.client.get("/v1.41/containers/json", headers=headers)
    await assert_error(r, 401, "AUTHENTICATION_FAILED")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="servin"'


async def test_two_credentials_are_refused(access: Access) -> None:
    token = (await (await access.client.post("/api/v1/tokens", json={}, headers=key(access.admin))).json())
    r = await access.client.get("/_ping", headers={**key(access.admin), **bearer(token["data"]["token"])})
    assert (await assert_error(r, 401, "AUTHENTICATION_FAILED"))["message"].startswith("more than one credential")


async def test_a_read_key_reads_and_cannot_write(access: Access) -> None:
    read = (await access.new_key(scope="read"))["key"]
    r = await access.client.get("/v1.41/containers/json", headers=key(read))
    assert r.status == 200 and await r.json() == []
    assert r.headers["X-RateLimit-Limit"] == "100" and r.headers["X-RateLimit-Remaining"] == "99"
    assert r.headers["X-RateLimit-Reset"] == "1"
    r = await access.client.post("/v1.41/containers/create", json={"Image": "busybox"}, headers=key(read))
    body = await assert_error(r, 403, "AUTHORIZATION_FAILED")
    assert body["details"] == {"scope": "read", "required": "write"}
    assert "X-RateLimit-Limit" in r.headers and "WWW-Authenticate" not in r.headers
    r = await access.client.get("/v1.41/containers/x/archive", params={"path": "/"}, headers=key(read))
    await assert_error(r, 403, "AUTHORIZATION_FAILED")
    r = await access.client.get("/api/v1/keys", headers=key(read))
    error = await assert_envelope_error(r, 403, "AUTHORIZATION_FAILED")
    assert error["details"] == {"scope": "read", "required": "admin"}


async def test_a_write_key_creates_containers_and_cannot_manage_keys(access: Access) -> None:
    write = (await access.new_key(scope="write"))["key"]
    r = await access.client.post("/v1.41/containers/create", json={"Image": "busybox"}, headers=key(write))
    assert r.status == 201, await r.text()
    r = await access.client.post("/api/v1/keys", json={"name": "x"}, headers=key(write))
    await assert_envelope_error(r, 403, "AUTHORIZATION_FAILED")


async def test_keys_are_generated_listed_and_revoked_through_the_envelope(access: Access) -> None:
    r = await access.client.post("/api/v1/keys", headers=key(access.admin),
                                 json={"name": "ci", "scope": "write", "expires": "30d", "rate_limit": "10/s"})
    assert r.status == 201
    body = await r.json()
    assert body["success"] is True and body["error"] is None
    made = body["data"]
    assert set(made) == {"id", "name", "scope", "created", "expires", "last_used", "rate_limit", "key"}
    assert (made["name"], made["scope"], made["rate_limit"], made["last_used"]) == ("ci", "write", "10/s", None)
    assert made["key"].startswith(f"svk_{made['id']}_") and made["expires"] > made["created"]
    r = await access.client.get("/v1.41/containers/json", headers=key(made["key"]))
    assert r.headers["X-RateLimit-Limit"] == "10"  # the key's own limit
    listed = (await (await access.client.get("/api/v1/keys", headers=key(access.admin))).json())["data"]
    assert listed["pagination"] == {"page": 1, "limit": 20, "total": 2, "pages": 1}
    ci = next(k for k in listed["items"] if k["id"] == made["id"])
    assert "key" not in ci and ci["last_used"] is not None
    assert made["key"] not in json.dumps(listed)
    page = (await (await access.client.get("/api/v1/keys", params={"page": "2", "limit": "1"},
                                           headers=key(access.admin))).json())["data"]
    assert len(page["items"]) == 1 and page["pagination"] == {"page": 2, "limit": 1, "total": 2, "pages": 2}
    r = await access.client.delete(f"/api/v1/keys/{made['id']}", headers=key(access.admin))
    assert r.status == 200 and (await r.json())["data"] == {"id": made["id"], "revoked": True}
    r = await access.client.get("/v1.41/containers/json", headers=key(made["key"]))  # refused at once
    await assert_error(r, 401, "AUTHENTICATION_FAILED")
    r = await access.client.delete(f"/api/v1/keys/{made['id']}", headers=key(access.admin))
    await assert_envelope_error(r, 404, "RESOURCE_NOT_FOUND")


@pytest.mark.parametrize("body, words", [
    ({}, "name is required"), ({"name": "x", "scope": "root"}, "invalid scope"),
    ({"name": "x", "expires": "soon"}, "expires: invalid duration"),
    ({"name": "x", "rate_limit": "fast"}, "rate_limit: invalid rate"),
    ({"name": "x", "colour": "red"}, "unknown field(s): colour"), ({"name": 5}, "name must be a string"),
])
async def test_bad_key_requests_are_validation_errors(access: Access, body: dict[str, Any], words: str) -> None:
    r = await access.client.post("/api/v1/keys", json=body, headers=key(access.admin))
    assert words in (await assert_envelope_error(r, 400, "VALIDATION_ERROR"))["message"]


async def test_a_browser_post_cannot_make_a_key(make: Make) -> None:
    access = await make(auth_tcp="none")  # a loopback development daemon a web page can reach
    for ct in ("text/plain;charset=UTF-8", "application/x-www-form-urlencoded"):
        r = await access.client.post("/api/v1/keys", data=json.dumps({"name": "page", "scope": "admin"}),
                                     headers={"Content-Type": ct})
        error = await assert_envelope_error(r, 400, "VALIDATION_ERROR")
        assert error["message"] == f"Content-Type specified ({ct}) must be 'application/json'"
    assert [k.name for k in access.gate.keys.list()] == ["admin"]


async def test_management_errors_are_in_the_envelope(access: Access) -> None:
    await assert_envelope_error(await access.client.get("/api/v1/nope", headers=key(access.admin)), 404,
                                "RESOURCE_NOT_FOUND")
    await assert_envelope_error(await access.client.put("/api/v1/keys", headers=key(access.admin)), 405,
                                "INVALID_PARAMETER")
    await assert_envelope_error(await access.client.get("/api/v1/keys", params={"limit": "101"},
                                                        headers=key(access.admin)), 400, "INVALID_PARAMETER")
    r = await access.client.get("/api/v1/keys")
    await assert_envelope_error(r, 401, "AUTHENTICATION_FAILED")
    assert r.headers["WWW-Authenticate"] == 'Bearer realm="servin"'
    r = await access.client.get("/api/v1/keys", params={"api_key": access.admin})  # the reference's query form
    assert r.status == 200
    r = await access.client.get("/v1.41/containers/json", params={"api_key": access.admin})  # not on Docker's
    await assert_error(r, 401, "AUTHENTICATION_FAILED")


async def test_tokens_are_issued_and_used_as_bearer(access: Access) -> None:
    r = await access.client.post("/api/v1/tokens", json={"scope": "write", "ttl": "15m", "subject": "deploy"},
                                 headers=key(access.admin))
    assert r.status == 201, await r.text()
    data = (await r.json())["data"]
    assert (data["scope"], data["subject"]) == ("write", "deploy") and data["expires"].endswith("Z")
    r = await access.client.post("/v1.41/containers/create", json={"Image": "busybox"}, headers=bearer(data["token"]))
    assert r.status == 201 and r.headers["X-RateLimit-Limit"] == "100"
    r = await access.client.post("/api/v1/tokens", json={}, headers=bearer(data["token"]))
    await assert_envelope_error(r, 403, "AUTHORIZATION_FAILED")
    default = (await (await access.client.post("/api/v1/tokens", json={}, headers=key(access.admin))).json())["data"]
    r = await access.client.post("/api/v1/tokens", json={"subject": "a\nb"}, headers=key(access.admin))
    await assert_envelope_error(r, 400, "VALIDATION_ERROR")
    admin_id = access.gate.keys.list()[0].id
    assert (default["scope"], default["subject"]) == ("read", f"key:{admin_id}")
    lines = access.audit_lines()
    assert {"principal": "token:deploy", "method": "POST", "path": "/v1.41/containers/create", "status": 201,
            "remote": "127.0.0.1"}.items() <= next(x for x in lines if x["principal"] == "token:deploy").items()


async def test_over_the_limit_is_429_with_retry_after(access: Access) -> None:
    slow = (await access.new_key(rate_limit="2/min"))["key"]
    for remaining in ("1", "0"):
        r = await access.client.get("/_ping", headers=key(slow))
        assert r.status == 200 and r.headers["X-RateLimit-Remaining"] == remaining
    r = await access.client.get("/_ping", headers=key(slow))
    await assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) >= 1 and r.headers["X-RateLimit-Remaining"] == "0"
    r = await access.client.get("/_ping", headers=key(access.admin))  # another key: its own bucket
    assert r.status == 200


async def test_repeated_failures_from_one_address_are_slowed_before_checking(make: Make) -> None:
    access = await make(auth_failure_limit=Rate.parse("3/min"))
    for _ in range(3):
        await assert_error(await access.client.get("/_ping", headers=key("svk_bad")), 401, "AUTHENTICATION_FAILED")
    r = await access.client.get("/_ping", headers=key(access.admin))  # even a good key waits now
    body = await assert_error(r, 429, "RATE_LIMIT_EXCEEDED")
    assert "too many failed authentication attempts from 127.0.0.1" in body["message"]
    assert int(r.headers["Retry-After"]) >= 1


async def test_the_audit_log_has_who_what_and_no_secret(access: Access) -> None:
    made = await access.new_key(scope="read")
    await access.client.get("/v1.41/containers/json?all=1", headers=key(made["key"]))
    await access.client.get("/api/v1/keys", params={"api_key": access.admin})
    await access.client.get("/v1.41/info", headers=key("svk_bad"))
    lines = access.audit_lines()
    text = json.dumps(lines)
    assert made["key"] not in text and access.admin not in text
    assert {"principal": f"key:{made['id']}", "method": "GET", "path": "/v1.41/containers/json?all=1",
            "status": 200, "remote": "127.0.0.1"}.items() <= lines[1].items()
    assert lines[2]["path"] == "/api/v1/keys?api_key=REDACTED"
    assert (lines[3]["principal"], lines[3]["status"]) == ("unauthenticated", 401)
    assert lines[0]["time"].endswith("Z") and len(lines) == 4


async def test_tcp_without_auth_when_configured_and_a_bad_key_still_refused(make: Make) -> None:
    access = await make(auth_tcp="none")
    r = await access.client.get("/v1.41/containers/json")
    assert r.status == 200 and "X-RateLimit-Limit" not in r.headers
    await assert_error(await access.client.get("/_ping", headers=key("svk_bad")), 401, "AUTHENTICATION_FAILED")
    read = (await access.new_key(scope="read"))["key"]  # a presented key's scope holds
    r = await access.client.post("/v1.41/containers/create", json={"Image": "busybox"}, headers=key(read))
    await assert_error(r, 403, "AUTHORIZATION_FAILED")


async def test_reload_changes_limits_and_token_keys(access: Access, env: Env) -> None:
    r = await access.client.get("/_ping", headers=key(access.admin))
    assert r.headers["X-RateLimit-Limit"] == "100"
    other = DaemonConfig(data_root=Path(access.gate.keys.path).parent.parent, api_rate_limit=Rate.parse("7/s"))
    wiring.reconfigure_gate(access.gate, other)
    r = await access.client.get("/_ping", headers=key(access.admin))
    assert r.headers["X-RateLimit-Limit"] == "7"
    with pytest.raises(ValueError, match="token-jwks"):
        wiring.reconfigure_gate(access.gate, DaemonConfig(data_root=other.data_root, token_jwks=env.tmp / "none"))
    assert access.gate.policy.rate == Rate.parse("7/s")


async def unix_client(tmp: Path, app: web.Application) -> tuple[aiohttp.ClientSession, web.AppRunner]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.UnixSite(runner, str(tmp / "s.sock")).start()
    return aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(tmp / "s.sock"))), runner


@pytest.mark.parametrize("required", [False, True])
async def test_the_unix_socket(env: Env, tmp_path: Path, required: bool) -> None:
    gate = wiring.build_gate(DaemonConfig(data_root=tmp_path / "root", auth_unix="required" if required else "none"))
    _k, read = gate.keys.generate(name="r", scope=Scope.READ)
    session, runner = await unix_client(tmp_path, wiring.build_api(env.client.server.app[SERVICES], gate))
    try:
        async with session.get("http://servin/_ping") as r:
            assert r.status == (401 if required else 200)
            assert "X-RateLimit-Limit" not in r.headers or required
        async with session.get("http://servin/_ping", headers=key("svk_bad")) as r:
            assert r.status == 401  # a presented credential is always checked
        async with session.post("http://servin/v1.41/containers/create", json={"Image": "busybox"},
                                headers=key(read)) as r:
            assert r.status == 403
        async with session.get("http://servin/v1.41/containers/json", headers=key(read)) as r:
            assert r.status == 200 and r.headers["X-RateLimit-Limit"] == "100"
    finally:
        await session.close()
        await runner.cleanup()
    lines = [json.loads(x) for x in (tmp_path / "root" / "access" / "audit.log").read_text().splitlines()]
    assert lines[0]["principal"] == ("unauthenticated" if required else "unix") and lines[0]["remote"] == ""


async def test_audit_log_settings_are_honoured(make: Make, tmp_path: Path) -> None:
    log = tmp_path / "audit" / "a.log"
    access = await make(audit_log=log, audit_log_max_size=300, audit_log_max_files=2)
    for _ in range(6):
        assert (await access.client.get("/_ping", headers=key(access.admin))).status == 200
    assert access.gate.audit is not None
    access.gate.audit.close()
    assert log.exists() and log.with_name("a.log.1").exists() and not log.with_name("a.log.2").exists()
    assert log.stat().st_size <= 300 and oct(log.stat().st_mode & 0o777) == "0o600"


async def test_outside_tokens_from_the_configured_keys(make: Make, tmp_path: Path) -> None:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "idp.pem"
    pem.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo))
    access = await make(token_public_keys=(pem,), token_audience="https://servin.test", token_issuer="https://idp")
    now = int(time.time())
    claims = {"sub": "alice", "scope": "write", "exp": now + 600, "aud": "https://servin.test", "iss": "https://idp"}
    r = await access.client.post("/v1.41/containers/create", json={"Image": "busybox"},
                                 headers=bearer(jwt.encode(claims, private, algorithm="RS256")))
    assert r.status == 201, await r.text()
    for bad in ({"aud": "servin"}, {"iss": "https://other"}):
        r = await access.client.get("/_ping", headers=bearer(jwt.encode({**claims, **bad}, private, algorithm="RS256")))
        await assert_error(r, 401, "AUTHENTICATION_FAILED")
    lines = access.audit_lines()
    assert any(x["principal"] == "token:alice" and x["status"] == 201 for x in lines)
