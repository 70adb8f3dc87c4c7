"""The gate: one aiohttp middleware in front of every route, Docker's and the management API's.

For each request it decides who is calling, from the strongest evidence presented:
- an `X-API-Key: svk_...` header (or `?api_key=` on the management API, as its reference allows), or
  `Authorization: Bearer <JWT>`: a credential that is presented is always checked, on every listener;
- a client certificate verified by the TLS handshake (`--tlsverify`): `cert:<subject CN>`, full scope;
- nothing: allowed only where the listener does not require a credential (by default the unix socket,
  which its file mode and group protect, as with Docker), with full scope.
Then: the scope the request needs (scopes.required), the caller's rate limit (a token bucket per key,
token subject or certificate; long streams are one request), and after the answer is prepared, the
rate-limit headers and an audit line. Failures raise typed errors (servin/errors.py) that the API's
outer middleware renders. Repeated failed authentication from one address is slowed: past the
`auth-failure-limit`, the address gets 429 before its credential is even looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from servin import errors
from servin.access import scopes
from servin.access.audit import AuditEntry, AuditLog
from servin.access.durations import Rate
from servin.access.keys import KeyStore
from servin.access.ratelimit import Allowance, RateLimiter
from servin.access.scopes import Scope
from servin.access.tokens import TokenAuthority

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

KEY_FLUSH_SECONDS = 60.0
MAX_FAILING = 10_000  # addresses with recent failures remembered (the limiter bounds its buckets alike)
MANAGEMENT_PREFIX = "/api/"


@dataclass(frozen=True, slots=True, kw_only=True)
class Principal:
    name: str  # as the audit log writes it: key:<id>, token:<sub>, cert:<CN>, unix, anonymous
    scope: Scope
    rate: Rate | None  # None: not rate-limited (no credential was needed, on a Docker route)
    bucket: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    tcp_required: bool = True  # auth-tcp: "required"
    unix_required: bool = False  # auth-unix: "none"
    rate: Rate  # api-rate-limit: keys without their own, tokens, certificates
    failure_rate: Rate  # auth-failure-limit: failed authentications per client address


PRINCIPAL = web.RequestKey("servin.principal", Principal)  # who a request the gate let through is from
_SEEN = web.RequestKey("servin.gate", tuple)  # (principal name, remote) for the audit line
_ALLOWANCE = web.RequestKey("servin.allowance", Allowance)  # behind the X-RateLimit-* headers


class Gate:
    def __init__(self, *, keys: KeyStore, tokens: TokenAuthority, policy: Policy, limiter: RateLimiter,
                 audit: AuditLog | None, clock: Callable[[], datetime.datetime] | None = None) -> None:
        self.keys = keys
        self.tokens = tokens
        self.policy = policy
        self.limiter = limiter
        self.audit = audit
        self._clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self._failing: dict[str, None] = {}  # failure buckets that may not be full (oldest first, bounded)

    def reconfigure(self, *, tokens: TokenAuthority, policy: Policy) -> None:
        """SIGHUP: new token keys and limits for the next request (the key file is reloaded by its store)."""
        self.tokens, self.policy = tokens, policy

    def install(self, app: web.Application) -> None:
        """The middleware's companions: headers and the audit line on every answer, and the last-use
        times of keys written every minute and at shutdown, when the audit log is closed too."""
        app.on_response_prepare.append(self._on_prepare)
        app.cleanup_ctx.append(self._background)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        unix = _on_unix_socket(request)
        remote = "" if unix else (request.remote or "")
        request[_SEEN] = ("unauthenticated", remote)
        principal = self._authenticate(request, unix, remote)
        request[PRINCIPAL] = principal
        request[_SEEN] = (principal.name, remote)
        needed = scopes.required(request.method, request.path)
        if principal.scope < needed:
            if principal.rate is not None:
                request[_ALLOWANCE] = self.limiter.peek(principal.bucket, principal.rate)
            raise errors.ScopeRefused(
                f"{principal.name} has scope {principal.scope}: {request.method} {request.path} needs {needed}",
                scope=str(principal.scope), required=str(needed))
        if principal.rate is not None:
            allowance = self.limiter.take(principal.bucket, principal.rate)
            request[_ALLOWANCE] = allowance
            if not allowance.allowed:
                raise errors.RateLimited(f"rate limit of {principal.rate} exceeded for {principal.name}",
                                         retry_after=allowance.retry_after)
        return await handler(request)

    def _authenticate(self, request: web.Request, unix: bool, remote: str) -> Principal:
        presented = _credential(request)
        cert = None if unix else _certificate_cn(request)
        if presented is None and cert is not None:
            return Principal(name=f"cert:{cert}", scope=Scope.ADMIN, rate=self.policy.rate, bucket=f"cert:{cert}")
        required = self.policy.unix_required if unix else self.policy.tcp_required
        if presented is None and not required:
            name = "unix" if unix else "anonymous"
            # the management API limits every caller (its X-RateLimit-* headers on every answer); Docker's
            # routes leave the socket unlimited, as dockerd does
            rate = self.policy.rate if request.path.startswith(MANAGEMENT_PREFIX) else None
            return Principal(name=name, scope=Scope.ADMIN, rate=rate, bucket=name)
        failures = f"failures:{remote or 'unix'}"
        if failures in self._failing:  # the common case, no failure of late, costs this lookup only
            allowance = self.limiter.peek(failures, self.policy.failure_rate)
            if not allowance.allowed:
                request[_ALLOWANCE] = allowance
                raise errors.RateLimited(
                    f"too many failed authentication attempts from {remote or 'the unix socket'}",
                    retry_after=allowance.retry_after)
            if allowance.remaining >= allowance.limit:
                del self._failing[failures]
        try:
            if presented is None:
                raise errors.AuthenticationFailed(
                    "authentication required: send an API key (X-API-Key) or a bearer token (Authorization: "
                    "Bearer)" + ("" if unix else ", or use a TLS client certificate (--tlsverify)"))
            return self._verify(*presented)
        except errors.AuthenticationFailed:
            request[_ALLOWANCE] = self.limiter.take(failures, self.policy.failure_rate)
            self._failing[failures] = None
            if len(self._failing) > MAX_FAILING:
                del self._failing[next(iter(self._failing))]
            raise

    def _verify(self, kind: str, text: str) -> Principal:
        if kind == "refused":
            raise errors.AuthenticationFailed(text)
        if kind == "key":
            key = self.keys.verify(text)
            return Principal(name=f"key:{key.id}", scope=key.scope, rate=key.rate_limit or self.policy.rate,
                             bucket=f"key:{key.id}")
        claims = self.tokens.verify(text)
        return Principal(name=f"token:{claims.subject}", scope=claims.scope, rate=self.policy.rate,
                         bucket=f"token:{claims.subject}")

    async def _on_prepare(self, request: web.Request, resp: web.StreamResponse) -> None:
        seen: tuple[str, str] | None = request.get(_SEEN)
        if seen is None:  # not a request the gate saw (aiohttp's own answer to a malformed request)
            return
        allowance: Allowance | None = request.get(_ALLOWANCE)
        if allowance is not None:
            resp.headers["X-RateLimit-Limit"] = str(allowance.limit)
            resp.headers["X-RateLimit-Remaining"] = str(allowance.remaining)
            resp.headers["X-RateLimit-Reset"] = str(allowance.reset)
        if self.audit is not None:
            name, remote = seen
            self.audit.record(AuditEntry(time=self._clock(), principal=name, method=request.method,
                                         path=request.path_qs, status=resp.status, remote=remote))

    async def _background(self, _app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(self._flush_keys_every_minute())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        self.keys.flush()
        if self.audit is not None:
            self.audit.close()

    async def _flush_keys_every_minute(self) -> None:
        while True:
            await asyncio.sleep(KEY_FLUSH_SECONDS)
            try:
                await asyncio.to_thread(self.keys.flush)
            except OSError as exc:
                log.warning("writing the API keys' last use failed: %s", exc)


def _credential(request: web.Request) -> tuple[str, str] | None:
    """("key", text) or ("token", text) of the one credential the request carries, if any; ("refused", why)
    for what is no credential (another Authorization scheme, two of them), counted as a failure."""
    found: list[tuple[str, str]] = []
    if "X-API-Key" in request.headers:
        found.append(("key", request.headers["X-API-Key"]))
    if request.path.startswith(MANAGEMENT_PREFIX) and "api_key" in request.query:
        found.append(("key", request.query["api_key"]))
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "refused", "unsupported Authorization header: use Authorization: Bearer <token>"
        found.append(("token", token.strip()))
    if len(found) > 1:
        return "refused", "more than one credential: send either an API key or a bearer token"
    return found[0] if found else None


def _on_unix_socket(request: web.Request) -> bool:
    transport = request.transport
    sockname: Any = transport.get_extra_info("sockname") if transport is not None else None
    return isinstance(sockname, str | bytes)  # a TCP socket's is a tuple


def _certificate_cn(request: web.Request) -> str | None:
    """The subject CN of a client certificate the handshake verified (the context requires and checks it
    with --tlsverify; without verification the ssl module reports no certificate)."""
    transport = request.transport
    cert = transport.get_extra_info("peercert") if transport is not None else None
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return "unnamed"
