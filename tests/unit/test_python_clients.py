"""`servin.ManagementClient` and `servin.APIClient` against a scripted HTTP server: what reaches the daemon
(paths, queries, bodies, credentials) and what the caller gets back (data, pages, one error type)."""

from __future__ import annotations

import json
import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

import servin
from servin.access.certs import generate
from servin.access.tls import ServerTLS, server_context
from servin.client.management import parse_base_url
from servin.client.tls import TLSConfig
from servin.errors import InvalidArgument

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class Scripted:
    """Answers by (method, path): (status, JSON body or raw bytes, headers); records every request."""

    routes: dict[tuple[str, str], Callable[[Seen], tuple[int, Any, dict[str, str]]]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)

    def on(self, method: str, path: str, status: int = 200, body: Any = None, **headers: str) -> None:
        self.routes[(method, path)] = lambda _s: (status, body, headers)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        script = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def _any(self) -> None:
                parts = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            {k.lower(): v for k, v in self.headers.items()}, json.loads(raw) if raw else None)
                script.seen.append(seen)
                route = script.routes.get((self.command, parts.path))
                status, body, headers = route(seen) if route else (404, envelope_error("RESOURCE_NOT_FOUND",
                                                                                       "no such path"), {})
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k.replace("_", "-"), v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _any

        return Handler


def ok(data: Any) -> dict[str, Any]:
    return {"success": True, "data": data, "error": None}


def envelope_error(code: str, message: str, details: Any = None) -> dict[str, Any]:
    err = {"code": code, "message": message, **({"details": details} if details else {})}
    return {"success": False, "data": None, "error": err}


@pytest.fixture
def server() -> Iterator[tuple[Scripted, str]]:
    script = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), script.handler())
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield script, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Scripted, str, Path]]:
    """An HTTPS server that asks for a client certificate its CA signed."""
    certs = tmp_path / "certs"
    generate(certs, [])
    ctx = server_context(ServerTLS(cert=certs / "server-cert.pem", key=certs / "server-key.pem", ca=certs / "ca.pem",
                                   verify=True))
    script = Scripted()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), script.handler())
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield script, f"https://localhost:{httpd.server_address[1]}", certs
    httpd.shutdown()
    httpd.server_close()


# ManagementClient


def test_data_pages_queries_and_the_key(server: tuple[Scripted, str]) -> None:
    script, url = server
    items = [{"id": "a" * 64, "name": "web", "status": "running"}]
    script.on("GET", "/api/v1/containers", body=ok({"items": items,
                                                    "pagination": {"page": 2, "limit": 1, "total": 3, "pages": 3}}))
    script.on("GET", "/api/v1/containers/web%2F1", body=ok({"id": "a" * 64, "name": "web"}))
    client = servin.ManagementClient(api_key="svk_key", base_url=url + "/api/v1")
    page = client.containers.list(all=True, filters={"status": "exited", "label": ["a=1", "b"]}, page=2, limit=1)
    assert page == items and isinstance(page, servin.Page) and isinstance(page, list)
    assert (page.page, page.pages, page.total) == (2, 3, 3)
    assert client.containers.get("web/1")["name"] == "web"
    first, second = script.seen
    assert first.query == {"all": ["true"], "filter": ["status=exited", "label=a=1", "label=b"], "page": ["2"],
                           "limit": ["1"]}
    assert second.path == "/api/v1/containers/web%2F1"
    assert all(s.headers["x-api-key"] == "svk_key" and "authorization" not in s.headers for s in script.seen)


def test_posts_bodies_and_a_token(server: tuple[Scripted, str]) -> None:
    script, url = server
    answer = {"id": "x", "name": "web", "status": "stopped"}
    script.on("POST", "/api/v1/containers/web/stop", body=ok(answer))
    script.on("POST", "/api/v1/webhooks", status=201, body=ok({"id": "wh1"}))
    script.on("POST", "/api/v1/images/pull", body=ok({"id": "sha256:1", "repository": "busybox", "tag": "1"}))
    script.on("DELETE", "/api/v1/images/busybox:1", body=ok({"id": "sha256:1"}))
    client = servin.ManagementClient(token="jwt.t.t", base_url=url)  # no path: the prefix is /api/v1
    assert client.containers.stop("web", timeout=3) == answer
    assert client.webhooks.add("http://hook", ["container.start"], secret="s") == {"id": "wh1"}
    assert client.images.pull("busybox", "1")["tag"] == "1"
    client.images.remove("busybox:1", force=True)
    stop, hook, pull, remove = script.seen
    assert stop.query == {"timeout": ["3"]} and stop.headers["authorization"] == "Bearer jwt.t.t"
    assert hook.body == {"url": "http://hook", "events": ["container.start"], "secret": "s"}
    assert hook.headers["content-type"] == "application/json"
    assert pull.body == {"repository": "busybox", "tag": "1"} and remove.query == {"force": ["true"]}
    with pytest.raises(InvalidArgument, match="not both"):
        servin.ManagementClient(api_key="k", token="t", base_url=url)


def test_one_error_type_with_the_code(server: tuple[Scripted, str]) -> None:
    script, url = server
    script.on("POST", "/api/v1/containers/web/start", status=403,
              body=envelope_error("AUTHORIZATION_FAILED", "the key's scope is read", {"scope": "read",
                                                                                     "required": "write"}))
    script.on("GET", "/api/v1/system/info", status=200, body=b"<html>not the API</html>")
    client = servin.ManagementClient("svk_read", url + "/api/v1")
    with pytest.raises(servin.ManagementError) as caught:
        client.containers.start("web")
    err = caught.value
    assert (err.code, err.status, err.details) == ("AUTHORIZATION_FAILED", 403, {"scope": "read", "required": "write"})
    assert err.message == "the key's scope is read" and "AUTHORIZATION_FAILED" in str(err)
    with pytest.raises(servin.ManagementError) as caught:
        client.containers.get("nope")
    assert (caught.value.code, caught.value.status) == ("RESOURCE_NOT_FOUND", 404)
    with pytest.raises(servin.ManagementError) as caught:
        client.system.info()
    assert caught.value.code == "INVALID_RESPONSE"
    with pytest.raises(servin.ManagementError) as caught:
        servin.ManagementClient("k", "http://127.0.0.1:1/api/v1").system.status()
    assert (caught.value.code, caught.value.status) == ("CONNECTION_FAILED", 0)
    assert "Cannot connect" in caught.value.message


def test_rate_limited_calls_raise_or_are_retried(server: tuple[Scripted, str]) -> None:
    script, url = server
    calls = []

    def limited(_seen: Seen) -> tuple[int, Any, dict[str, str]]:
        calls.append(1)
        if len(calls) < 3:
            return 429, envelope_error("RATE_LIMIT_EXCEEDED", "rate limit exceeded"), {"Retry-After": "1"}
        return 200, ok({"status": "healthy"}), {}

    script.routes[("GET", "/api/v1/system/status")] = limited
    with pytest.raises(servin.ManagementError) as caught:
        servin.ManagementClient("k", url).system.status()
    assert (caught.value.code, caught.value.status, caught.value.retry_after) == ("RATE_LIMIT_EXCEEDED", 429, 1)
    patient = servin.ManagementClient("k", url, rate_limit_retries=3, max_retry_wait=0.01)
    assert patient.system.status() == {"status": "healthy"} and len(calls) == 3


def test_followed_logs_are_yielded_entry_by_entry(server: tuple[Scripted, str]) -> None:
    script, url = server
    lines = [ok({"logs": [{"stream": "stdout", "message": "one"}, {"stream": "stdout", "message": "two"}]}),
             ok({"logs": [{"stream": "stderr", "message": "three"}]})]
    script.on("GET", "/api/v1/containers/web/logs", body=b"".join(json.dumps(x).encode() + b"\n" for x in lines))
    client = servin.ManagementClient("k", url)
    assert [e["message"] for e in client.containers.logs("web", tail=2, follow=True)] == ["one", "two", "three"]
    assert script.seen[-1].query == {"tail": ["2"], "follow": ["true"]}
    failing = json.dumps(envelope_error("OPERATION_FAILED", "log file gone")).encode() + b"\n"
    script.on("GET", "/api/v1/containers/web/logs", body=json.dumps(lines[0]).encode() + b"\n" + failing)
    followed = client.containers.logs("web", follow=True)
    assert next(followed)["message"] == "one"
    next(followed)
    with pytest.raises(servin.ManagementError, match="log file gone"):
        next(followed)
    script.on("GET", "/api/v1/containers/gone/logs", status=404, body=envelope_error("RESOURCE_NOT_FOUND", "gone"))
    with pytest.raises(servin.ManagementError) as caught:
        list(client.containers.logs("gone", follow=True))
    assert caught.value.code == "RESOURCE_NOT_FOUND"


def test_the_management_api_over_a_unix_socket(tmp_path: Path) -> None:
    script = Scripted()
    script.on("GET", "/api/v1/system/info", body=ok({"version": "0.1.0"}))

    class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

        def get_request(self) -> Any:
            conn, _addr = super().get_request()
            return conn, ("local", 0)  # BaseHTTPRequestHandler logs a (host, port)

    sock = tmp_path / "s.sock"
    httpd = UnixHTTPServer(str(sock), script.handler())
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        assert servin.ManagementClient(base_url=f"unix://{sock}").system.info() == {"version": "0.1.0"}
        quoted = str(sock).replace("/", "%2F")
        assert servin.ManagementClient(base_url=f"http+unix://{quoted}/api/v1").system.info()["version"]
        assert "x-api-key" not in script.seen[0].headers
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_https_with_a_ca_and_a_client_certificate(tls_server: tuple[Scripted, str, Path]) -> None:
    script, url, certs = tls_server
    script.on("GET", "/api/v1/system/status", body=ok({"status": "healthy"}))
    script.on("GET", "/v1.41/containers/json", body=[])
    tls = servin.TLSConfig(ca_cert=certs / "ca.pem", client_cert=(certs / "cert.pem", certs / "key.pem"))
    assert servin.ManagementClient("k", url + "/api/v1", tls=tls).system.status() == {"status": "healthy"}
    assert servin.APIClient(base_url=url, tls=tls, api_key="k", version="1.41").containers.list() == []
    assert [s.headers["x-api-key"] for s in script.seen] == ["k", "k"]
    with pytest.raises(servin.ManagementError) as caught:  # no client certificate: the handshake fails
        servin.ManagementClient("k", url, tls=servin.TLSConfig(ca_cert=certs / "ca.pem")).system.status()
    assert caught.value.code == "CONNECTION_FAILED"
    with pytest.raises(servin.ManagementError) as caught:  # the system's CAs do not know this one
        servin.ManagementClient("k", url).system.status()
    assert caught.value.code == "CONNECTION_FAILED" and "certificate" in caught.value.message


@pytest.mark.parametrize(("url", "where", "prefix"), [
    ("http://localhost:8080/api/v1", "http://localhost:8080", "/api/v1"),
    ("http://example.com", "http://example.com:80", "/api/v1"),
    ("https://example.com/mgmt/api/v1/", "https://example.com:443", "/mgmt/api/v1"),
    ("tcp://10.0.0.1:2375", "tcp://10.0.0.1:2375", "/api/v1"),
    ("unix:///run/servin/servin.sock", "unix:///run/servin/servin.sock", "/api/v1"),
    ("http+unix://%2Frun%2Fservin.sock/api/v1", "unix:///run/servin.sock", "/api/v1"),
])
def test_base_urls(url: str, where: str, prefix: str) -> None:
    endpoint, got = parse_base_url(url, None)
    assert (endpoint.url, got) == (where, prefix)
    assert (endpoint.tls is not None) == url.startswith("https")


@pytest.mark.parametrize(("url", "tls", "message"), [
    ("localhost:8080", None, "invalid base URL"),
    ("ftp://host/api/v1", None, "unsupported scheme ftp://"),
    ("http://host:8080/api/v1", TLSConfig(), "plain http://"),
    ("http://host/api/v1?x=1", None, "only scheme://host:port/prefix"),
])
def test_bad_base_urls(url: str, tls: TLSConfig | None, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        parse_base_url(url, tls)


# servin.APIClient (docker-py)


def test_api_client_sends_the_key_on_every_call_the_version_probe_included(server: tuple[Scripted, str]) -> None:
    script, url = server
    script.on("GET", "/version", body={"ApiVersion": "1.41", "Version": "0.1.0"})
    script.on("GET", "/v1.41/containers/json", body=[])
    client = servin.APIClient(base_url=url, api_key="svk_key")
    assert client.containers.list() == []
    assert [s.path for s in script.seen] == ["/version", "/v1.41/containers/json"]
    assert all(s.headers.get("x-api-key") == "svk_key" for s in script.seen)
    bearer = servin.APIClient(base_url=url, token="jwt.t.t", version="1.41")
    bearer.containers.list(all=True)
    assert script.seen[-1].headers["authorization"] == "Bearer jwt.t.t" and script.seen[-1].path.startswith("/v1.41")


def test_api_client_defaults_and_environment(monkeypatch: pytest.MonkeyPatch, server: tuple[Scripted, str]) -> None:
    script, url = server
    script.on("GET", "/v1.41/_ping", body=b"OK")
    for name in ("SERVIN_HOST", "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "SERVIN_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert servin.APIClient(version="1.41").api.base_url == "http+docker://localhost"  # the unix socket
    monkeypatch.setenv("SERVIN_HOST", url)
    monkeypatch.setenv("SERVIN_API_KEY", "svk_env")
    client = servin.APIClient.from_env(version="1.41")
    assert client.ping() and script.seen[-1].headers["x-api-key"] == "svk_env"
    with pytest.raises(InvalidArgument, match="not both"):
        servin.APIClient(base_url=url, api_key="k", token="t", version="1.41")


def test_import_servin_loads_no_client_until_asked() -> None:
    code = ("import sys, servin; assert 'docker' not in sys.modules and 'servin.client' not in sys.modules; "
            "servin.ManagementClient; assert 'docker' not in sys.modules; servin.APIClient; "
            "assert 'docker' in sys.modules; print('ok')")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert res.stdout.strip() == "ok", res.stderr


def test_without_docker_py_the_error_says_what_to_install() -> None:
    code = ("import sys; sys.modules['docker'] = None\nimport servin\nservin.ManagementClient\n"
            "try:\n    servin.APIClient\nexcept ImportError as e:\n    print(e)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(ROOT)})
    assert "pip install 'servin[client]'" in res.stdout, res.stderr
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        servin.Nope  # noqa: B018
