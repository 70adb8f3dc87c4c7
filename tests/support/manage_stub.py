"""A stand-in daemon for the `servin` CLI's tests: the management API's /api/v1/keys and /api/v1/tokens as
ISSUE12-CONTRACT.md fixes them (admin scope, the success/data/error envelope, pagination), plus Docker's
/_ping, /version and /info, served from a thread on a unix socket and, optionally, a TLS TCP port.

It is the contract, not the implementation: the real endpoints live in servin/manage and servin/access."""

from __future__ import annotations

import asyncio
import re
import secrets
import ssl
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

from servin.api.wire import system as wire
from servin.core.host import HostFacts

FACTS = HostFacts(
    id="0123456789abcdef0123456789abcdef", hostname="stubhost", kernel_version="6.1.0-stub",
    operating_system="Stub Linux", os_version="1", architecture="x86_64", go_arch="amd64", ncpu=4,
    mem_total=8 << 30, data_root="/var/lib/servin", cgroup_version=2, cgroup_driver="cgroupfs", debug=False,
    swap_limit=True, start_time_ns=0,
)
SCOPES = ("read", "write", "admin")
DURATION = re.compile(r"^(\d+)([smhdw])$")
RATE = re.compile(r"^[1-9]\d*/(s|sec|m|min|h)$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
ADMIN_KEY = "svk_000000000000_adminsecret"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class StubKey:
    id: str
    name: str
    scope: str
    created: datetime
    expires: datetime | None = None
    last_used: datetime | None = None
    rate_limit: str | None = None
    secret: str = ""

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scope": self.scope, "created": _time(self.created),
                "expires": _time(self.expires), "last_used": _time(self.last_used), "rate_limit": self.rate_limit}


@dataclass
class Forced:
    status: int
    body: Any  # JSON, or a str sent as text/plain
    headers: dict[str, str] = field(default_factory=dict)


class StubDaemon:
    """`require_auth`: every request needs an admin (or, for Docker's routes, any) key or token; without it
    the unix socket is trusted as admin, as the real daemon trusts its socket by default."""

    def __init__(self, root: Path, *, require_auth: bool = False, manage: bool = True,
                 tls: ssl.SSLContext | None = None) -> None:
        self.socket = root / "stub.sock"
        self.require_auth = require_auth
        self.manage = manage
        self.tls = tls
        self.port = 0
        self.keys: dict[str, StubKey] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # token -> (scope, subject)
        self.requests: list[Request] = []
        self.forced: list[Forced] = []  # answers given, in order, before the routes'
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._error: BaseException | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def add_key(self, name: str, scope: str = "read", **kw: Any) -> StubKey:
        key_id = secrets.token_hex(6)
        k = StubKey(id=key_id, name=name, scope=scope, created=datetime.now(timezone.utc), **kw)
        k.secret = f"svk_{key_id}_{secrets.token_urlsafe(32)}"
        self.keys[key_id] = k
        return k

    def start(self) -> StubDaemon:
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _serve(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        runner = web.AppRunner(self._app())
        try:
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.UnixSite(runner, str(self.socket)).start())
            if self.tls is not None:
                site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.tls)
                loop.run_until_complete(site.start())
                self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        except BaseException as exc:  # handed to start()
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/_ping", _ping)
        app.router.add_get("/version", _version)
        app.router.add_get("/info", _info)
        if self.manage:
            app.router.add_post("/api/v1/keys", self._create_key)
            app.router.add_get("/api/v1/keys", self._list_keys)
            app.router.add_delete("/api/v1/keys/{id}", self._revoke_key)
            app.router.add_post("/api/v1/tokens", self._create_token)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Request(request.method, request.path, dict(request.query), dict(request.headers), body))
        if self.forced:
            f = self.forced.pop(0)
            if isinstance(f.body, str):
                return web.Response(text=f.body, status=f.status, headers=f.headers)
            return web.json_response(f.body, status=f.status, headers=f.headers)
        managed = request.path.startswith("/api/v1")
        scope, subject = self._caller(request)
        if scope is None:
            message = "authentication required: send X-API-Key or Authorization: Bearer"
            headers = {"WWW-Authenticate": 'Bearer realm="servin"'}
            if managed:
                return _failure(401, "AUTHENTICATION_FAILED", message, headers)
            return web.json_response({"message": message, "code": "AUTHENTICATION_FAILED"}, status=401,
                                     headers=headers)
        if managed and scope != "admin":
            return _failure(403, "AUTHORIZATION_FAILED", f"scope {scope} may not manage keys (admin needed)")
        try:
            return await handler(request)
        except web.HTTPNotFound:
            if managed:
                return _failure(404, "RESOURCE_NOT_FOUND", "page not found")
            return web.json_response({"message": "page not found"}, status=404)

    def _caller(self, request: web.Request) -> tuple[str | None, str]:
        key = request.headers.get("X-API-Key")
        auth = request.headers.get("Authorization", "")
        if key == ADMIN_KEY:
            return "admin", "key:000000000000"
        if key:
            for k in self.keys.values():
                if k.secret == key:
                    k.last_used = datetime.now(timezone.utc)
                    return k.scope, f"key:{k.id}"
            return None, ""
        if auth.startswith("Bearer "):
            found = self.tokens.get(auth[7:])
            return (found[0], f"token:{found[1]}") if found else (None, "")
        return (None, "") if self.require_auth else ("admin", "unix")

    async def _create_key(self, request: web.Request) -> web.Response:
        body = await request.json()
        name, scope = body.get("name"), body.get("scope", "read")
        if not isinstance(name, str) or not name:
            return _failure(400, "VALIDATION_ERROR", "name is required")
        if scope not in SCOPES:
            return _failure(400, "VALIDATION_ERROR", f"invalid scope {scope!r}")
        expires = body.get("expires")
        if expires is not None and not DURATION.match(expires):
            return _failure(400, "VALIDATION_ERROR", f"invalid duration {expires!r}")
        rate = body.get("rate_limit")
        if rate is not None and not RATE.match(rate):
            return _failure(400, "VALIDATION_ERROR", f"invalid rate limit {rate!r}")
        k = self.add_key(name, scope, rate_limit=rate,
                         expires=datetime.now(timezone.utc) + _duration(expires) if expires else None)
        return _success(201, {**k.wire(), "key": k.secret})

    async def _list_keys(self, request: web.Request) -> web.Response:
        page = int(request.query.get("page", "1"))
        limit = min(int(request.query.get("limit", "20")), 100)
        items = list(self.keys.values())
        chunk = items[(page - 1) * limit: page * limit]
        pages = max(1, -(-len(items) // limit))
        return _success(200, {"items": [k.wire() for k in chunk],
                              "pagination": {"page": page, "limit": limit, "total": len(items), "pages": pages}})

    async def _revoke_key(self, request: web.Request) -> web.Response:
        key_id = request.match_info["id"]
        if self.keys.pop(key_id, None) is None:
            return _failure(404, "RESOURCE_NOT_FOUND", f"no such key: {key_id}")
        return _success(200, {"id": key_id, "revoked": True})

    async def _create_token(self, request: web.Request) -> web.Response:
        body = await request.json()
        caller_scope, caller = self._caller(request)
        assert caller_scope is not None
        scope = body.get("scope", "read")
        if scope not in SCOPES:
            return _failure(400, "VALIDATION_ERROR", f"invalid scope {scope!r}")
        if SCOPES.index(scope) > SCOPES.index(caller_scope):
            return _failure(403, "AUTHORIZATION_FAILED", f"cannot issue a {scope} token with a {caller_scope} scope")
        ttl = body.get("ttl", "1h")
        if not DURATION.match(ttl):
            return _failure(400, "VALIDATION_ERROR", f"invalid duration {ttl!r}")
        subject = body.get("subject", caller)
        token = "eyJ." + secrets.token_urlsafe(16) + ".sig"
        self.tokens[token] = (scope, subject)
        expires = datetime.now(timezone.utc) + _duration(ttl)
        return _success(201, {"token": token, "scope": scope, "subject": subject, "expires": _time(expires)})


async def _ping(request: web.Request) -> web.Response:
    return web.Response(text="OK")


async def _version(request: web.Request) -> web.Response:
    return web.json_response(wire.version(FACTS))


async def _info(request: web.Request) -> web.Response:
    return web.json_response(wire.info(FACTS, {"running": 1, "paused": 0, "stopped": 2}, 3))


def _duration(text: str) -> timedelta:
    m = DURATION.match(text)
    assert m
    return timedelta(seconds=int(m[1]) * UNITS[m[2]])


def _time(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")


def _success(status: int, data: Any) -> web.Response:
    return web.json_response({"success": True, "data": data, "error": None}, status=status)


def _failure(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"success": False, "data": None, "error": {"code": code, "message": message}},
                             status=status, headers=headers)
