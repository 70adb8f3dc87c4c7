"""HTTP API v2 of one repository on one registry endpoint: auth (anonymous, basic, bearer), retries."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import socket
import ssl
from http import HTTPStatus
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp

from servin import errors
from servin.registry import auth as auth_mod
from servin.registry.auth import AuthConfig, Token
from servin.registry.errors import RegistryError, TransportError, from_response

log = logging.getLogger(__name__)

USER_AGENT = "docker/20.10.24 go/go1.19 git-commit/servin os/linux arch/amd64 UpstreamClient(servin)"
RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)  # back-off between attempts on transient failures
TRANSIENT = (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError, ConnectionResetError)


@dataclass(frozen=True, slots=True)
class Endpoint:
    url: str  # scheme://host[:port], no trailing slash
    verify_tls: bool = True
    mirror: bool = False
    tls: ssl.SSLContext | None = field(default=None, compare=False)  # the registry's certs.d CAs and client cert

    @property
    def ssl(self) -> Any:
        if self.url.startswith("http://"):
            return None
        if not self.verify_tls:
            return False
        return self.tls


@dataclass
class AuthState:
    """What a repository learnt: the challenge and the token for its scopes."""

    scheme: str = ""  # "", "basic", "bearer"
    params: dict[str, str] = field(default_factory=dict)
    token: Token | None = None
    refresh_token: str = ""


class Repository:
    def __init__(self, http: aiohttp.ClientSession, endpoint: Endpoint, path: str, creds: AuthConfig,
                 actions: tuple[str, ...] = ("pull",), extra_scopes: tuple[str, ...] = ()) -> None:
        self.http, self.endpoint, self.path, self.creds = http, endpoint, path, creds
        self.scopes = (f"repository:{path}:{','.join(actions)}", *extra_scopes)
        self.state = AuthState()

    def url(self, tail: str) -> str:
        return f"{self.endpoint.url}/v2/{self.path}/{tail}"

    # ------------------------------------------------------------------ auth

    def _auth_header(self) -> dict[str, str]:
        if self.creds.registry_token:
            return {"Authorization": "Bearer " + self.creds.registry_token}
        if self.state.scheme == "bearer" and self.state.token is not None:
            return {"Authorization": "Bearer " + self.state.token.value}
        if self.state.scheme == "basic" and self.creds.username:
            raw = f"{self.creds.username}:{self.creds.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    async def _authenticate(self, www_authenticate: str, method: str, url: str, *, offline: bool = False) -> bool:
        """Learn the challenge of a 401 and get credentials for it; False when nothing can be done."""
        for scheme, params in auth_mod.parse_challenges(www_authenticate):
            if scheme == "bearer" and params.get("realm"):
                self.state.scheme, self.state.params = "bearer", params
                self.state.token = await self._fetch_token(params, method, url, offline=offline)
                return True
            if scheme == "basic":
                if not self.creds.username:
                    raise errors.SystemError_(f'{method.title()} "{url}": no basic auth credentials')
                if self.state.scheme == "basic":
                    return False  # the credentials were refused
                self.state.scheme, self.state.params = "basic", params
                return True
        return False

    async def _fetch_token(self, params: dict[str, str], method: str, url: str, *, offline: bool) -> Token:
        realm, service = params["realm"], params.get("service", "")
        scopes = list(self.scopes)
        try:
            if self.creds.identity_token or self.state.refresh_token:
                form = {"grant_type": "refresh_token", "service": service, "client_id": auth_mod.CLIENT_ID,
                        "scope": " ".join(scopes),
                        "refresh_token": self.state.refresh_token or self.creds.identity_token}
                async with self.http.post(realm, data=form, ssl=self.endpoint.ssl) as resp:
                    body = await resp.read()
                    status, hdr = resp.status, resp.headers.get("WWW-Authenticate", "")
            else:
                query: list[tuple[str, str]] = []
                if service:
                    query.append(("service", service))
                query += [("scope", s) for s in scopes]
                basic = {}
                if self.creds.username:
                    query.append(("account", self.creds.username))
                    raw = f"{self.creds.username}:{self.creds.password}".encode()
                    basic = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
                if offline:
                    query += [("offline_token", "true"), ("client_id", auth_mod.CLIENT_ID)]
                sep = "&" if "?" in realm else "?"
                async with self.http.get(realm + sep + urlencode(query), headers=basic, ssl=self.endpoint.ssl) as resp:
                    body = await resp.read()
                    status, hdr = resp.status, resp.headers.get("WWW-Authenticate", "")
        except TRANSIENT as exc:
            raise errors.SystemError_(f'{method.title()} "{url}": {describe_transport_error(exc)}') from None
        if status != 200:
            err = from_response(status, body, hdr)
            if isinstance(err, RegistryError) and err.code == "UNKNOWN":
                err = RegistryError("UNAUTHORIZED", body.decode(errors="replace").strip() or "authentication required")
            raise errors.Unauthorized(f'{method.title()} "{url}": {err}')
        try:
            data = json.loads(body)
        except ValueError:
            raise errors.Unauthorized(f'{method.title()} "{url}": unable to decode token response') from None
        token = auth_mod.token_from_response(data)
        if token.refresh_token:
            self.state.refresh_token = token.refresh_token
        return token

    # ------------------------------------------------------------------ requests

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None, data: Any = None,
                      ok: tuple[int, ...] = (200,), retry: bool = True) -> aiohttp.ClientResponse:
        """Send with auth (re-authenticating once on 401) and retries on transient errors.

        Returns the response (the caller reads and releases it); raises RegistryError for an error
        answer, TransportError when the endpoint cannot be reached at all."""
        attempt = 0
        authed = False
        while True:
            if self.state.scheme == "bearer" and self.state.token is not None and not self.state.token.valid:
                self.state.token = await self._fetch_token(self.state.params, method, url, offline=False)
            sent = self._auth_header()
            hdrs = {"User-Agent": USER_AGENT, **sent, **(headers or {})}
            try:
                resp = await self.http.request(method, url, headers=hdrs, data=data, ssl=self.endpoint.ssl,
                                               allow_redirects=True)
            except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
                raise TransportError(f'{method.title()} "{url}": {describe_transport_error(exc)}') from None
            except asyncio.TimeoutError as exc:  # a registry that does not answer: no retry, no long hang
                raise errors.SystemError_(f'{method.title()} "{url}": {describe_transport_error(exc)}') from None
            except TRANSIENT as exc:
                if retry and attempt < len(RETRY_DELAYS) and _replayable(data):
                    await asyncio.sleep(RETRY_DELAYS[attempt])
                    attempt += 1
                    continue
                raise errors.SystemError_(f'{method.title()} "{url}": {describe_transport_error(exc)}') from None
            if resp.status in ok:
                return resp
            body = await resp.read()
            resp.release()
            if resp.status == 401 and not authed and _replayable(data) and not self.creds.registry_token:
                authed = True
                if self._auth_header() != sent:
                    continue  # a concurrent request authenticated meanwhile
                if await self._authenticate(resp.headers.get("WWW-Authenticate", ""), method, url):
                    continue
            if resp.status >= 500 and retry and attempt < len(RETRY_DELAYS) and _replayable(data):
                await asyncio.sleep(RETRY_DELAYS[attempt])
                attempt += 1
                continue
            raise from_response(resp.status, body, resp.headers.get("WWW-Authenticate", ""))

    async def ping(self, *, offline: bool = False) -> None:
        """GET /v2/ with credentials, as a login does; raises on refusal."""
        url = f"{self.endpoint.url}/v2/"
        hdrs = {"User-Agent": USER_AGENT}
        try:
            async with self.http.get(url, headers=hdrs, ssl=self.endpoint.ssl) as resp:
                await resp.read()
                status, challenge = resp.status, resp.headers.get("WWW-Authenticate", "")
        except (aiohttp.ClientConnectorError, aiohttp.ClientSSLError, ssl.SSLError) as exc:
            raise TransportError(f'Get "{url}": {describe_transport_error(exc)}') from None
        except TRANSIENT as exc:
            raise errors.SystemError_(f'Get "{url}": {describe_transport_error(exc)}') from None
        if status == 200:
            return
        if status != 401:
            raise errors.SystemError_(f"login attempt to {url} failed with status: {status} {_phrase(status)}")
        if self.creds.registry_token:
            self.state.scheme = "bearer"
        elif not await self._authenticate(challenge, "GET", url, offline=offline):
            raise errors.Unauthorized(f"login attempt to {url} failed with status: 401 Unauthorized")
        try:
            async with self.http.get(url, headers={**hdrs, **self._auth_header()}, ssl=self.endpoint.ssl) as resp:
                await resp.read()
                status = resp.status
        except TRANSIENT as exc:
            raise errors.SystemError_(f'Get "{url}": {describe_transport_error(exc)}') from None
        if status != 200:
            raise errors.Unauthorized(f"login attempt to {url} failed with status: {status} {_phrase(status)}")

    # ------------------------------------------------------------------ the API

    async def get_manifest(self, reference: str, accept: str) -> tuple[bytes, str, str]:
        """(raw bytes, Content-Type, Docker-Content-Digest) of a manifest by tag or digest."""
        resp = await self.request("GET", self.url(f"manifests/{reference}"), headers={"Accept": accept})
        try:
            raw = await resp.read()
        finally:
            resp.release()
        return raw, resp.headers.get("Content-Type", ""), resp.headers.get("Docker-Content-Digest", "")

    async def tags(self) -> list[str]:
        """Every tag of the repository (following the Link pagination)."""
        url, out = self.url("tags/list?n=1000"), []
        while url:
            resp = await self.request("GET", url)
            try:
                data = json.loads(await resp.read())
            except ValueError:
                raise errors.SystemError_(f"invalid tag list from {url}") from None
            finally:
                resp.release()
            out += [t for t in (data.get("tags") or []) if isinstance(t, str)]
            link = resp.headers.get("Link", "")
            url = urljoin(url, link.split(";")[0].strip().strip("<>")) if 'rel="next"' in link else ""
        return out

    async def blob_stream(self, digest: str, offset: int = 0) -> AsyncIterator[tuple[bool, bytes]]:
        """Yields (resumed, chunk) of a blob from `offset` (a Range request); `resumed` is false when
        the registry sent the whole blob instead (the caller starts over)."""
        headers = {"Range": f"bytes={offset}-"} if offset else None
        resp = await self.request("GET", self.url(f"blobs/{digest}"), headers=headers, ok=(200, 206))
        try:
            resumed = resp.status == 206
            async for chunk in resp.content.iter_chunked(1 << 20):
                yield resumed, chunk
        finally:
            resp.release()

    async def get_blob(self, digest: str, limit: int = 64 << 20) -> bytes:
        resp = await self.request("GET", self.url(f"blobs/{digest}"))
        try:
            data = await resp.content.read(limit + 1)
        finally:
            resp.release()
        if len(data) > limit:
            raise errors.InvalidArgument(f"blob {digest} is larger than {limit} bytes")
        return data

    async def blob_exists(self, digest: str) -> int | None:
        """The size of a blob the registry has, or None."""
        try:
            resp = await self.request("HEAD", self.url(f"blobs/{digest}"), ok=(200,))
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        resp.release()
        return int(resp.headers.get("Content-Length") or 0)

    async def start_upload(self, mount: str = "", source: str = "") -> str | None:
        """POST an upload session; with ``mount`` try a cross-repository mount first.

        Returns the upload location, or None when the blob was mounted."""
        query = f"?{urlencode({'mount': mount, 'from': source})}" if mount else ""
        resp = await self.request("POST", self.url(f"blobs/uploads/{query}"), ok=(201, 202),
                                  headers={"Content-Length": "0"})
        resp.release()
        if resp.status == 201:
            return None
        location = resp.headers.get("Location")
        if not location:
            raise errors.SystemError_("registry answered an upload without a Location")
        return urljoin(self.url(""), location)

    async def upload(self, location: str, digest: str, data: bytes) -> None:
        """A whole blob in the final PUT (monolithic upload)."""
        resp = await self.request("PUT", _with_query(location, digest=digest), data=data,
                                  headers={"Content-Type": "application/octet-stream"}, ok=(201, 204))
        resp.release()

    async def upload_stream(self, location: str, body: AsyncIterator[bytes], digest: Callable[[], str]) -> None:
        """A stream PATCHed (chunked), then a PUT with its digest, known once the stream has ended."""
        resp = await self.request("PATCH", location, data=body, ok=(202, 204),
                                  headers={"Content-Type": "application/octet-stream"}, retry=False)
        resp.release()
        location = urljoin(location, resp.headers.get("Location") or location)
        resp = await self.request("PUT", _with_query(location, digest=digest()), ok=(201, 204),
                                  headers={"Content-Length": "0"})
        resp.release()

    async def put_manifest(self, reference: str, media_type: str, raw: bytes) -> str:
        resp = await self.request("PUT", self.url(f"manifests/{reference}"), data=raw,
                                  headers={"Content-Type": media_type}, ok=(200, 201, 202))
        resp.release()
        return resp.headers.get("Docker-Content-Digest", "")


def _with_query(url: str, **params: str) -> str:
    return url + ("&" if "?" in url else "?") + urlencode(params)


def _replayable(data: Any) -> bool:
    return data is None or isinstance(data, bytes | bytearray | str | dict)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def describe_transport_error(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "net/http: request canceled (Client.Timeout exceeded while awaiting headers)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):  # Go's x509 wording, as dockerd prints it
        why = str(getattr(exc.certificate_error, "verify_message", "") or exc.certificate_error)
        if "local issuer" in why or "self-signed" in why or "self signed" in why:
            return "x509: certificate signed by unknown authority"
        return f"x509: {why}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, socket.gaierror):
            return f"dial tcp: lookup {exc.host}: no such host"
        errno = getattr(exc.os_error, "errno", None)
        reason = os.strerror(errno) if errno else str(exc.os_error)
        return f"dial tcp {exc.host}:{exc.port}: connect: {reason.lower()}"
    return str(exc) or type(exc).__name__
