"""/api/v1/keys and /api/v1/tokens: API keys generated, listed and revoked, and the daemon's bearer
tokens issued, for admin-scoped callers (the gate checks the scope)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from servin import errors
from servin.access.durations import Rate, parse_duration
from servin.access.gate import PRINCIPAL, Gate, Principal
from servin.access.keys import ApiKey, rfc3339
from servin.access.scopes import Scope
from servin.manage import envelope

DEFAULT_TTL = "1h"
MAX_SUBJECT = 200
T = TypeVar("T")


def add_routes(app: web.Application, gate: Gate) -> None:
    routes = _Routes(gate)
    app.router.add_post("/api/v1/keys", routes.generate)
    app.router.add_get("/api/v1/keys", routes.list)
    app.router.add_delete("/api/v1/keys/{id}", routes.revoke)
    app.router.add_post("/api/v1/tokens", routes.token)


def key_json(key: ApiKey) -> dict[str, Any]:
    return {"id": key.id, "name": key.name, "scope": str(key.scope), "created": rfc3339(key.created),
            "expires": rfc3339(key.expires), "last_used": rfc3339(key.last_used),
            "rate_limit": None if key.rate_limit is None else str(key.rate_limit)}


class _Routes:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate  # its keys, tokens (swapped on reload) and limiter

    async def generate(self, request: web.Request) -> web.Response:
        body = await envelope.json_object(request, allowed=("name", "scope", "expires", "rate_limit"))
        name = envelope.optional_str(body, "name")
        if not name:
            raise errors.InvalidArgument("name is required")
        scope = _scope(body)
        expires_text = envelope.optional_str(body, "expires")
        rate_text = envelope.optional_str(body, "rate_limit")
        expires = _parsed(parse_duration, "expires", expires_text)
        rate = _parsed(Rate.parse, "rate_limit", rate_text)
        key, text = await asyncio.to_thread(self.gate.keys.generate, name=name, scope=scope, expires=expires,
                                            rate_limit=rate)
        return envelope.ok({**key_json(key), "key": text}, status=201)

    async def list(self, request: web.Request) -> web.Response:
        return envelope.ok(envelope.paginate(request, [key_json(k) for k in self.gate.keys.list()]))

    async def revoke(self, request: web.Request) -> web.Response:
        key_id = request.match_info["id"]
        await asyncio.to_thread(self.gate.keys.revoke, key_id)
        self.gate.limiter.forget(f"key:{key_id}")
        return envelope.ok({"id": key_id, "revoked": True})

    async def token(self, request: web.Request) -> web.Response:
        caller: Principal = request[PRINCIPAL]
        body = await envelope.json_object(request, allowed=("scope", "ttl", "subject"))
        scope = _scope(body)
        if scope > caller.scope:
            raise errors.ScopeRefused(f"{caller.name} has scope {caller.scope} and cannot issue a {scope} token",
                                      scope=str(caller.scope), required=str(scope))
        ttl = _parsed(parse_duration, "ttl", envelope.optional_str(body, "ttl") or DEFAULT_TTL)
        subject = envelope.optional_str(body, "subject") or caller.name
        if len(subject) > MAX_SUBJECT or not subject.isprintable():
            raise errors.InvalidArgument(f"subject: 1 to {MAX_SUBJECT} printable characters")
        assert ttl is not None  # a text was given
        token, expires = self.gate.tokens.issue(subject=subject, scope=scope, ttl=ttl)
        return envelope.ok({"token": token, "scope": str(scope), "subject": subject, "expires": rfc3339(expires)},
                           status=201)


def _scope(body: dict[str, Any]) -> Scope:
    text = envelope.optional_str(body, "scope", "read") or "read"
    try:
        return Scope.parse(text)
    except ValueError as exc:
        raise errors.InvalidArgument(str(exc)) from None


def _parsed(parse: Callable[[str], T], name: str, text: str | None) -> T | None:
    if text is None:
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise errors.InvalidArgument(f"{name}: {exc}") from None

