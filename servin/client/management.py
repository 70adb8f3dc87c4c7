"""`ManagementClient`: the management API (`/api/v1`) from Python, on the standard library alone.

Every call answers the envelope's `data` (a list endpoint: a `Page`, the items with their `pagination`);
every failure, the daemon's or the connection's, is one `ManagementError` carrying the envelope's error
code. The base URL is `http(s)://host[:port][/prefix]` (default `http://localhost:8080/api/v1`, the
dedicated listener), `tcp://host:port` (as the docker CLI writes it), `unix:///path/to/socket` or
`http+unix://<%-quoted socket path>[/prefix]` (the management API is served on the Docker socket too)."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

from servin import __version__
from servin.client.api import APIError, Answer, error_of, header_safe, unreachable
from servin.client.endpoint import Endpoint, parse_host
from servin.client.resources import Containers, Images, Keys, System, Tokens, Troubleshoot, Webhooks
from servin.client.tls import TLSConfig
from servin.errors import InvalidArgument

DEFAULT_BASE_URL = "http://localhost:8080/api/v1"
PREFIX = "/api/v1"
USER_AGENT = f"servin-python/{__version__}"
CONNECTION_FAILED = "CONNECTION_FAILED"  # no answer at all (status 0)
INVALID_RESPONSE = "INVALID_RESPONSE"  # an answer outside the envelope
RATE_LIMIT_EXCEEDED = "RATE_LIMIT_EXCEEDED"


class ManagementError(APIError):
    """The one error of `ManagementClient`: `.code` (the envelope's, e.g. RESOURCE_NOT_FOUND, or
    CONNECTION_FAILED / INVALID_RESPONSE), `.status` (HTTP; 0 without an answer), `.message`, `.details`
    (a dict or None) and `.retry_after` (seconds, on RATE_LIMIT_EXCEEDED)."""

    def __str__(self) -> str:
        return f"{self.code or self.status}: {self.message}"


class Page(list[Any]):
    """One page of a list endpoint: the items, with `.pagination` ({page, limit, total, pages})."""

    def __init__(self, items: list[Any], pagination: Mapping[str, Any]) -> None:
        super().__init__(items)
        self.pagination: dict[str, Any] = dict(pagination)

    @property
    def page(self) -> int:
        return int(self.pagination.get("page", 1))

    @property
    def pages(self) -> int:
        return int(self.pagination.get("pages", 1))

    @property
    def total(self) -> int:
        return int(self.pagination.get("total", len(self)))


class ManagementClient:
    """`api_key` (sent as X-API-Key) or `token` (Authorization: Bearer); without either, only the unix
    socket lets calls through. `tls`: True for TLS checked against the system's CAs, a `TLSConfig` for a
    CA, a client certificate or no verification (https:// is TLS by itself). `rate_limit_retries`: how
    many times a call refused with RATE_LIMIT_EXCEEDED is sent again after the Retry-After the daemon
    names (at most `max_retry_wait` seconds each); 0 raises at once."""

    def __init__(self, api_key: str | None = None, base_url: str = DEFAULT_BASE_URL, *, token: str | None = None,
                 tls: bool | TLSConfig = False, timeout: float = 60.0, rate_limit_retries: int = 0,
                 max_retry_wait: float = 60.0) -> None:
        if api_key and token:
            raise InvalidArgument("give an API key or a bearer token, not both")
        self.endpoint, self.prefix = parse_base_url(base_url, TLSConfig() if tls is True else tls or None)
        self.timeout = timeout
        self.rate_limit_retries = rate_limit_retries
        self.max_retry_wait = max_retry_wait
        self._headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if api_key:
            self._headers["X-API-Key"] = header_safe(api_key, "API key")
        if token:
            self._headers["Authorization"] = "Bearer " + header_safe(token, "token")
        self.system = System(self)
        self.containers = Containers(self)
        self.images = Images(self)
        self.webhooks = Webhooks(self)
        self.keys = Keys(self)
        self.tokens = Tokens(self)
        self.troubleshoot = Troubleshoot(self)

    def __repr__(self) -> str:
        return f"ManagementClient(base_url={self.endpoint.url + self.prefix!r})"

    def request(self, method: str, path: str, *, query: Mapping[str, Any] | None = None, body: Any = None) -> Any:
        """One call (`path` below the prefix, e.g. "/containers"): the envelope's data; a paginated list
        as a `Page`."""
        target = self._target(path, query)
        data = None if body is None else json.dumps(body).encode()
        for attempt in range(self.rate_limit_retries + 1):
            try:
                a = self._send(method, target, data)
            except ManagementError as exc:
                if exc.code != RATE_LIMIT_EXCEEDED or attempt == self.rate_limit_retries:
                    raise
                time.sleep(min(1 if exc.retry_after is None else exc.retry_after, self.max_retry_wait))
                continue
            return _as_page(_data(_envelope(a, method, target), a.status))
        raise AssertionError("unreachable")  # the loop returns or raises

    def stream(self, method: str, path: str, *, query: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """The data of each envelope of a newline-delimited JSON answer (logs or stats that follow), until the
        daemon ends it; leaving the iteration closes the connection."""
        target = self._target(path, query)
        conn = self.endpoint.connection(self.timeout)
        try:
            try:
                conn.request(method, target, headers=self._headers)
                resp = conn.getresponse()
            except (OSError, http.client.HTTPException) as exc:
                raise _unreachable(self.endpoint, method, target, exc) from None
            if resp.status >= 400:
                raise error_of(_read(resp), ManagementError)
            if conn.sock is not None:
                conn.sock.settimeout(None)  # a follow waits as long as the container is quiet
            for line in resp:
                if line.strip():
                    a = Answer(resp.status, {}, line)
                    yield _data(_envelope(a, method, target), resp.status)
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(self.endpoint, method, target, exc) from None
        finally:
            conn.close()

    def _target(self, path: str, query: Mapping[str, Any] | None) -> str:
        pairs = [(k, _query_text(v)) for k, v in (query or {}).items() if v is not None and not isinstance(v, list)]
        pairs += [(k, _query_text(item)) for k, v in (query or {}).items() if isinstance(v, list) for item in v]
        return self.prefix + path + ("?" + urlencode(pairs) if pairs else "")

    def _send(self, method: str, target: str, data: bytes | None) -> Answer:
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        conn = self.endpoint.connection(self.timeout)
        try:
            conn.request(method, target, body=data, headers=headers)
            a = _read(conn.getresponse())
        except (OSError, http.client.HTTPException) as exc:
            raise _unreachable(self.endpoint, method, target, exc) from None
        finally:
            conn.close()
        if a.status >= 400:
            raise error_of(a, ManagementError)
        return a


def parse_base_url(url: str, tls: TLSConfig | None) -> tuple[Endpoint, str]:
    """(where to connect, the path prefix of the management API)."""
    scheme, sep, rest = url.strip().partition("://")
    scheme = scheme.lower()
    if not sep:
        raise InvalidArgument(f"invalid base URL {url!r}: use http://host:port/api/v1, unix:///path/to/socket "
                              "or http+unix://%2Fpath%2Fto%2Fsocket/api/v1")
    if scheme == "unix":
        return parse_host(url, tls), PREFIX
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"invalid base URL {url!r}: {exc}") from None
    if parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidArgument(f"invalid base URL {url!r}: only scheme://host:port/prefix")
    prefix = parts.path.rstrip("/") or PREFIX
    if scheme == "http+unix":
        socket_path = unquote(parts.netloc)
        if tls is not None:
            raise InvalidArgument(f"TLS is for http(s):// URLs; {url} is a unix socket")
        return parse_host(f"unix://{socket_path}", None), prefix
    if scheme == "tcp":
        return parse_host(f"tcp://{parts.netloc}", tls), prefix
    if scheme not in ("http", "https"):
        raise InvalidArgument(f"unsupported scheme {scheme}:// in {url!r}: use http(s)://, tcp:// or unix://")
    if scheme == "http" and tls is not None:
        raise InvalidArgument(f"{url} is plain http:// but TLS was asked for: use https://")
    if scheme == "https" and tls is None:
        tls = TLSConfig()
    host = parts.hostname or "localhost"
    port = port or (443 if scheme == "https" else 80)
    shown = f"[{host}]" if ":" in host else host
    return Endpoint(url=f"{scheme}://{shown}:{port}", socket_path=None, host=host, port=port,
                    tls=tls.context() if tls is not None else None), prefix


def _read(resp: http.client.HTTPResponse) -> Answer:
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())


def _unreachable(ep: Endpoint, method: str, target: str, exc: BaseException) -> ManagementError:
    return ManagementError(0, unreachable(ep, method, target, exc).message, code=CONNECTION_FAILED)


def _envelope(a: Answer, method: str, target: str) -> dict[str, Any]:
    try:
        payload = json.loads(a.body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or "success" not in payload:
        raise ManagementError(a.status, f"the daemon answered {method} {target} outside the management API's "
                              f"envelope: {a.body[:200]!r}", code=INVALID_RESPONSE)
    return payload


def _data(envelope: dict[str, Any], status: int) -> Any:
    if envelope.get("success") is False:
        err = envelope.get("error")
        if not isinstance(err, dict):
            err = {}
        raise ManagementError(status, str(err.get("message") or "the call failed"), code=str(err.get("code") or ""),
                              details=err.get("details"))
    return envelope.get("data")


def _as_page(data: Any) -> Any:
    if isinstance(data, dict) and set(data) == {"items", "pagination"} and isinstance(data["items"], list):
        return Page(data["items"], data["pagination"] or {})
    return data


def _query_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
