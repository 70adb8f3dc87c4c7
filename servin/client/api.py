"""A small synchronous client of Servin's HTTP API: Docker's routes (`/_ping`, `/version`, `/info`) and the
management API's keys and tokens (`/api/v1`), over a unix socket, TCP or TLS, with an API key or a bearer
token. Failures are two kinds of error with the messages the docker CLI prints: `APIError` (the daemon
answered with an error) and `DaemonUnreachable` (no answer at all)."""

from __future__ import annotations

import http.client
import json
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from servin import __version__
from servin.client.endpoint import DEFAULT_HOST, Endpoint, parse_host
from servin.client.models import ApiKey, KeyPage, MalformedAnswer, NewKey, Token
from servin.client.tls import TLSConfig
from servin.errors import InvalidArgument, ServinError

USER_AGENT = f"servin-cli/{__version__}"
MANAGE = "/api/v1"
PAGE_MAX = 100  # the largest page the management API serves
T = TypeVar("T")


class APIError(ServinError):
    """The daemon's error answer: Docker's `{"message", "code"}` body or the management API's
    `{"success": false, "error": {"code", "message"}}`."""

    def __init__(self, status: int, message: str, *, code: str = "", details: Any = None,
                 retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details
        self.retry_after = retry_after  # seconds, on a 429


class DaemonUnreachable(ServinError):
    """No HTTP answer: nothing listens, the socket is not ours to open, TLS failed, the connection broke."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes


class APIClient:
    """`tls`: True for TLS checked against the system's CAs, a `TLSConfig` for more (a CA, a client
    certificate, no verification), False for none (https:// URLs are TLS regardless)."""

    def __init__(self, base_url: str | None = None, *, tls: bool | TLSConfig = False, api_key: str | None = None,
                 token: str | None = None, timeout: float = 60.0) -> None:
        if api_key and token:
            raise InvalidArgument("give an API key or a bearer token, not both")
        self.endpoint: Endpoint = parse_host(base_url or DEFAULT_HOST,
                                             TLSConfig() if tls is True else tls or None)
        self.timeout = timeout
        self._headers = {"User-Agent": USER_AGENT}
        if api_key:
            self._headers["X-API-Key"] = header_safe(api_key, "API key")
        if token:
            self._headers["Authorization"] = "Bearer " + header_safe(token, "token")

    @property
    def base_url(self) -> str:
        return self.endpoint.url

    @property
    def sends_credentials(self) -> bool:
        return "X-API-Key" in self._headers or "Authorization" in self._headers

    # Docker's routes

    def ping(self) -> bool:
        a = self._call("GET", "/_ping")
        return a.body.strip() == b"OK"

    def version(self) -> dict[str, Any]:
        return _json_object(self._call("GET", "/version"))

    def info(self) -> dict[str, Any]:
        return _json_object(self._call("GET", "/info"))

    # the management API

    def create_key(self, name: str, *, scope: str = "read", expires: str | None = None,
                   rate_limit: str | None = None) -> NewKey:
        body = {"name": name, "scope": scope, "expires": expires, "rate_limit": rate_limit}
        return self._manage("POST", "/keys", NewKey.from_wire, body=body)

    def keys(self, *, page: int = 1, limit: int = 20) -> KeyPage:
        return self._manage("GET", "/keys", KeyPage.from_wire, query={"page": page, "limit": limit})

    def all_keys(self) -> Iterator[ApiKey]:
        page = 1
        while True:
            batch = self.keys(page=page, limit=PAGE_MAX)
            yield from batch.items
            if page >= batch.pages or not batch.items:
                return
            page += 1

    def revoke_key(self, key_id: str) -> None:
        self._manage("DELETE", f"/keys/{quote(key_id, safe='')}", _anything)

    def create_token(self, *, scope: str | None = None, ttl: str | None = None,
                     subject: str | None = None) -> Token:
        body = {k: v for k, v in (("scope", scope), ("ttl", ttl), ("subject", subject)) if v is not None}
        return self._manage("POST", "/tokens", Token.from_wire, body=body)

    # the wire

    def _manage(self, method: str, path: str, read: Callable[[Any], T], *, body: Any = None,
                query: Mapping[str, Any] | None = None) -> T:
        a = self._call(method, MANAGE + path, body=body, query=query)
        payload = _json(a)
        if isinstance(payload, dict) and payload.get("success") is False:
            raise error_of(a)  # a failure in a 2xx
        if not isinstance(payload, dict) or "success" not in payload:
            raise APIError(a.status, f"the daemon answered {method} {MANAGE}{path} without the management "
                           "API's envelope: is it a Servin daemon with the management API?")
        try:
            return read(payload.get("data"))
        except MalformedAnswer as exc:
            raise APIError(a.status, f"malformed answer to {method} {MANAGE}{path}: {exc}") from None

    def _call(self, method: str, path: str, *, body: Any = None,
              query: Mapping[str, Any] | None = None) -> Answer:
        target = path + ("?" + urlencode(query) if query else "")
        headers = dict(self._headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        a = self._send(method, target, data, headers)
        if a.status >= 400:
            raise error_of(a)
        return a

    def _send(self, method: str, target: str, data: bytes | None, headers: dict[str, str]) -> Answer:
        conn = self.endpoint.connection(self.timeout)
        try:
            conn.request(method, target, body=data, headers=headers)
            resp = conn.getresponse()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        except (OSError, http.client.HTTPException) as exc:
            raise unreachable(self.endpoint, method, target, exc) from None
        finally:
            conn.close()


def unreachable(ep: Endpoint, method: str, target: str, exc: BaseException) -> DaemonUnreachable:
    """The docker CLI's one line for a request that got no answer."""
    if isinstance(exc, (FileNotFoundError, ConnectionRefusedError)):
        return DaemonUnreachable(f"Cannot connect to the Servin daemon at {ep.url}. Is the daemon running?")
    op = f"{method[0]}{method[1:].lower()} \"{ep.request_url(target)}\""
    if isinstance(exc, PermissionError):
        return DaemonUnreachable(f"permission denied while trying to connect to the Servin daemon socket at "
                                 f"{ep.url}: {op}: dial unix {ep.socket_path}: connect: permission denied")
    return DaemonUnreachable(f"error during connect: {op}: {_why(ep, exc)}")


def _why(ep: Endpoint, exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").lower().replace("_", " ")
        return f"tls: {reason or exc}"
    if isinstance(exc, socket.gaierror):
        return f"dial tcp: lookup {ep.host}: {exc.strerror}"
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    if isinstance(exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        why = "EOF" if isinstance(exc, http.client.RemoteDisconnected) else "connection reset by peer"
        if ep.tls is not None:
            return f"{why} (the daemon ended the TLS connection: does it want a client certificate its CA signed?)"
        if ep.socket_path is None:
            return f"{why} (the daemon ended the connection: is it a TLS port? try --tlsverify)"
        return why
    if isinstance(exc, http.client.HTTPException):
        return f"malformed HTTP response ({type(exc).__name__})"
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def error_of(a: Answer, kind: type[APIError] = APIError) -> APIError:
    """The error a failed answer carries, as `kind` (an APIError or a subclass)."""
    payload = _json(a, strict=False)
    retry = a.headers.get("retry-after", "")
    retry_after = int(retry) if retry.isdigit() else None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict) and err.get("message"):
            return kind(a.status, str(err["message"]), code=str(err.get("code") or ""),
                            details=err.get("details"), retry_after=retry_after)
        if payload.get("message"):
            return kind(a.status, str(payload["message"]), code=str(payload.get("code") or ""),
                            details=payload.get("details"), retry_after=retry_after)
    text = a.body.decode(errors="replace").strip()
    if not text or isinstance(payload, dict):
        text = f"{a.status} {_phrase(a.status)}"
    return kind(a.status, text, retry_after=retry_after)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _json(a: Answer, *, strict: bool = True) -> Any:
    try:
        return json.loads(a.body)
    except ValueError:
        if not strict:
            return None
        raise APIError(a.status, f"malformed answer from the daemon (not JSON): {a.body[:200]!r}") from None


def _json_object(a: Answer) -> dict[str, Any]:
    payload = _json(a)
    if not isinstance(payload, dict):
        raise APIError(a.status, "malformed answer from the daemon: not a JSON object")
    return payload


def _anything(data: Any) -> Any:
    return data


def header_safe(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0") or value != value.strip():
        raise InvalidArgument(f"the {what} has characters an HTTP header cannot carry (a line break or "
                              "surrounding spaces)")
    return value
