"""Where the daemon is: a host as the docker CLI writes it (unix:///path, tcp://host:port, or an http(s)://
URL as docker-py takes), parsed once into what a connection needs."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from servin.client.tls import TLSConfig
from servin.errors import InvalidArgument

# daemon/config.DEFAULT_SOCKET: the client may not import the daemon, so it keeps its own copy
DEFAULT_HOST = "unix:///run/servin/servin.sock"
DEFAULT_TLS_PORT, DEFAULT_PLAIN_PORT = 2376, 2375


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    url: str  # the host as messages show it: unix:///run/servin/servin.sock, tcp://127.0.0.1:2376
    socket_path: str | None  # a unix socket's path; None over TCP
    host: str  # the name or address connected to (and checked against the server's certificate)
    port: int
    tls: ssl.SSLContext | None

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.socket_path is not None:
            return _UnixConnection(self.socket_path, timeout)
        if self.tls is not None:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.tls)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    @property
    def in_clear_off_host(self) -> bool:
        """Plain TCP to an address other than loopback: what is sent crosses the network readable."""
        if self.socket_path is not None or self.tls is not None or self.host == "localhost":
            return False
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return True  # a name: it may resolve anywhere

    def request_url(self, path: str) -> str:
        """The URL of a request as Go's http client shows it in errors."""
        if self.socket_path is not None:
            return f"http://{quote(self.socket_path, safe='')}{path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"


def parse_host(text: str, tls: TLSConfig | None) -> Endpoint:
    """`tls` (given) makes a tcp:// host TLS; https:// is TLS by itself (checked against the system's CAs
    when no TLSConfig says otherwise)."""
    text = text.strip() or DEFAULT_HOST
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise InvalidArgument(f"invalid host {text!r}: use unix:///path/to/socket or tcp://host:port")
    scheme = scheme.lower()
    if scheme == "ssh":
        raise InvalidArgument(f"ssh:// hosts are not supported by servin ({text}): connect with tcp:// and TLS, "
                              "or run servin on the daemon's machine with its unix socket")
    if scheme == "fd":
        raise InvalidArgument(f"fd:// is for the daemon's own listeners (systemd socket activation), not a "
                              f"client ({text}): use unix:// or tcp://")
    if scheme == "unix":
        return _unix(text, rest, tls)
    if scheme in ("tcp", "http", "https"):
        return _tcp(text, scheme, tls)
    raise InvalidArgument(f"unsupported host scheme {scheme}:// ({text}): use unix:// or tcp://")


def _unix(text: str, path: str, tls: TLSConfig | None) -> Endpoint:
    if not path.startswith("/"):
        raise InvalidArgument(f"invalid host {text!r}: a unix socket needs an absolute path "
                              "(unix:///run/servin/servin.sock)")
    if tls is not None:
        raise InvalidArgument(f"TLS is for tcp:// hosts; {text} is a unix socket")
    return Endpoint(url=f"unix://{path}", socket_path=path, host="localhost", port=0, tls=None)


def _tcp(text: str, scheme: str, tls: TLSConfig | None) -> Endpoint:
    if scheme == "http" and tls is not None:
        raise InvalidArgument(f"{text} is plain http:// but TLS was asked for: use tcp:// or https://")
    if scheme == "https" and tls is None:
        tls = TLSConfig()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise InvalidArgument(f"invalid host {text!r}: {exc}") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidArgument(f"invalid host {text!r}: only {scheme}://host:port, without a path")
    host = parts.hostname or "localhost"
    if port is None:
        port = DEFAULT_TLS_PORT if tls is not None else DEFAULT_PLAIN_PORT
    shown = f"[{host}]" if ":" in host else host
    return Endpoint(url=f"{scheme}://{shown}:{port}", socket_path=None, host=host, port=port,
                    tls=tls.context() if tls is not None else None)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
