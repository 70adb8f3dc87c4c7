"""API keys, bearer tokens, scopes, rate limits and the audit log end to end: a daemon with a TCP loopback
listener that requires a credential (the default), driven by the docker CLI (`HttpHeaders` in its
config.json), docker-py (which reads the same file) and curl; keys made through /api/v1/keys on the
daemon's unix socket."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.e2e.test_tls import free_port, generate
from tests.support.daemon import ServinDaemon, running_daemon

pytestmark = pytest.mark.e2e


class Listener:
    def __init__(self, d: ServinDaemon, port: int) -> None:
        self.d, self.port = d, port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def curl(self, method: str, path: str, *, headers: dict[str, str] | None = None, unix: bool = False,
             body: Any = None) -> tuple[int, dict[str, str], Any]:
        """(status, headers with lowercased names, JSON body or text) of one request with curl."""
        args = ["curl", "-sS", "-D", "-", "-X", method]
        for k, v in (headers or {}).items():
            args += ["-H", f"{k}: {v}"]
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(body)]
        if unix:
            args += ["--unix-socket", str(self.d.socket), f"http://servin{path}"]
        else:
            args.append(self.url + path)
        out = subprocess.run(args, capture_output=True, timeout=30, check=True).stdout.decode()
        head, _, text = out.partition("\r\n\r\n")
        lines = head.split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def new_key(self, **body: Any) -> dict[str, Any]:
        status, _h, out = self.curl("POST", "/api/v1/keys", unix=True, body={"name": "e2e", **body})
        assert status == 201, out
        return out["data"]

    def new_token(self, **body: Any) -> str:
        status, _h, out = self.curl("POST", "/api/v1/tokens", unix=True, body=body)
        assert status == 201, out
        return str(out["data"]["token"])

    def docker(self, tmp: Path, headers: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        """The docker CLI on the TCP listener, sending `headers` from HttpHeaders in its config.json."""
        config = tmp / f"docker-config-{abs(hash(json.dumps(headers)))}"
        config.mkdir(exist_ok=True)
        (config / "config.json").write_text(json.dumps({"HttpHeaders": headers}))
        env = dict(self.d.env, DOCKER_HOST=f"tcp://127.0.0.1:{self.port}", DOCKER_CONFIG=str(config))
        return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=60)

    def audit(self) -> list[dict[str, Any]]:
        path = self.d.data_root / "access" / "audit.log"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def settings(d: ServinDaemon, **keys: Any) -> None:
    d.config_file.write_text(json.dumps(keys))


@pytest.fixture(scope="module")
def tcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Listener]:
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}", "--auth-failure-limit", "1000/min")) as d:
        yield Listener(d, port)


def key(text: str) -> dict[str, str]:
    return {"X-API-Key": text}


def test_the_docker_cli_with_a_key_in_http_headers(tcp: Listener, tmp_path: Path) -> None:
    write = tcp.new_key(scope="write")["key"]
    res = tcp.docker(tmp_path, key(write), "run", "--rm", "busybox", "echo", "hello")
    assert res.returncode == 0 and res.stdout == "hello\n", res.stderr
    assert tcp.docker(tmp_path, key(write), "ps", "-a").returncode == 0


def test_no_key_is_refused(tcp: Listener, tmp_path: Path) -> None:
    res = tcp.docker(tmp_path, {}, "ps")
    assert res.returncode != 0 and "authentication required" in res.stderr, res.stderr
    status, headers, body = tcp.curl("GET", "/v1.41/containers/json")
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="servin"'
    assert body["code"] == "AUTHENTICATION_FAILED"


def test_a_read_key_can_ps_and_cannot_run(tcp: Listener, tmp_path: Path) -> None:
    read = tcp.new_key(scope="read")["key"]
    assert tcp.docker(tmp_path, key(read), "ps").returncode == 0
    res = tcp.docker(tmp_path, key(read), "run", "--rm", "busybox", "true")
    assert res.returncode != 0 and "has scope read" in res.stderr and "needs write" in res.stderr, res.stderr
    status, _h, body = tcp.curl("POST", "/v1.41/containers/create", headers=key(read), body={"Image": "busybox"})
    assert status == 403 and body["code"] == "AUTHORIZATION_FAILED"
    assert body["details"] == {"scope": "read", "required": "write"}


def test_an_expired_key_is_refused(tcp: Listener) -> None:
    made = tcp.new_key(expires="1s")
    time.sleep(1.5)
    status, _h, body = tcp.curl("GET", "/_ping", headers=key(made["key"]))
    assert status == 401 and f"API key {made['id']} expired" in body["message"]


def test_a_revoked_key_is_refused_at_once(tcp: Listener) -> None:
    made = tcp.new_key()
    assert tcp.curl("GET", "/_ping", headers=key(made["key"]))[0] == 200
    status, _h, body = tcp.curl("DELETE", f"/api/v1/keys/{made['id']}", unix=True)
    assert status == 200 and body == {"success": True, "data": {"id": made["id"], "revoked": True}, "error": None}
    status, _h, body = tcp.curl("GET", "/_ping", headers=key(made["key"]))
    assert status == 401 and body == {"message": "invalid API key", "code": "AUTHENTICATION_FAILED"}
    _s, _h, listed = tcp.curl("GET", "/api/v1/keys", unix=True)
    assert made["id"] not in [k["id"] for k in listed["data"]["items"]]


def test_docker_py_reads_http_headers_from_its_config(tcp: Listener, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    read = tcp.new_key(scope="read")["key"]
    (tmp_path / "config.json").write_text(json.dumps({"HttpHeaders": key(read)}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    client = docker.DockerClient(base_url=f"tcp://127.0.0.1:{tcp.port}", version="auto", timeout=60)
    try:
        assert isinstance(client.containers.list(all=True), list)
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", "true")
        assert e.value.status_code == 403 and "needs write" in str(e.value.explanation)
    finally:
        client.close()


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_bearer_tokens(tcp: Listener, tmp_path: Path) -> None:
    token = tcp.new_token(scope="write", ttl="10m", subject="ci")
    res = tcp.docker(tmp_path, {"Authorization": f"Bearer {token}"}, "run", "--rm", "busybox", "true")
    assert res.returncode == 0, res.stderr
    head, body, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=="))
    none = f"{b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    forged = ".".join([head, b64(json.dumps({**claims, "scope": "admin"}).encode()), sig])
    for bad, words in ((none, "'none' is not accepted"), (forged, "signature is invalid")):
        status, headers, out = tcp.curl("GET", "/_ping", headers={"Authorization": f"Bearer {bad}"})
        assert status == 401 and words in out["message"] and "www-authenticate" in headers
    read = tcp.new_token(scope="read")
    assert tcp.docker(tmp_path, {"Authorization": f"Bearer {read}"}, "ps").returncode == 0
    res = tcp.docker(tmp_path, {"Authorization": f"Bearer {read}"}, "rm", "-f", "nothing")
    assert res.returncode != 0 and "needs write" in res.stderr


def test_rate_limit_headers_and_429(tcp: Listener) -> None:
    made = tcp.new_key(rate_limit="2/min")
    status, headers, _b = tcp.curl("GET", "/_ping", headers=key(made["key"]))
    assert status == 200 and (headers["x-ratelimit-limit"], headers["x-ratelimit-remaining"]) == ("2", "1")
    assert int(headers["x-ratelimit-reset"]) > 0
    assert tcp.curl("GET", "/_ping", headers=key(made["key"]))[0] == 200
    status, headers, body = tcp.curl("GET", "/_ping", headers=key(made["key"]))
    assert status == 429 and body["code"] == "RATE_LIMIT_EXCEEDED" and int(headers["retry-after"]) >= 1


def test_a_long_stream_counts_once(tcp: Listener) -> None:
    made = tcp.new_key(rate_limit="3/min")
    proc = subprocess.Popen(["curl", "-sS", "-N", "-H", f"X-API-Key: {made['key']}", f"{tcp.url}/v1.41/events"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        tcp.curl("POST", "/v1.41/containers/create", unix=True, body={"Image": "busybox"})  # an event streams
        time.sleep(0.5)
        status, headers, _b = tcp.curl("GET", "/_ping", headers=key(made["key"]))
        assert status == 200 and headers["x-ratelimit-remaining"] == "1"
    finally:
        proc.terminate()
        proc.wait()


def test_the_audit_log(tcp: Listener) -> None:
    made = tcp.new_key(scope="read")
    tcp.curl("GET", "/v1.41/containers/json?all=1", headers=key(made["key"]))
    tcp.curl("GET", f"/api/v1/keys?api_key={made['key']}")  # a key in a query string is redacted
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = tcp.audit()
        mine = [x for x in lines if x["principal"] == f"key:{made['id']}"]
        if mine and any("REDACTED" in x["path"] for x in lines):
            break
        time.sleep(0.1)
    assert {"principal": f"key:{made['id']}", "method": "GET", "path": "/v1.41/containers/json?all=1",
            "status": 200, "remote": "127.0.0.1"}.items() <= mine[0].items()
    assert mine[0]["time"].endswith("Z")
    assert made["key"] not in (tcp.d.data_root / "access" / "audit.log").read_text()
    assert any(x["principal"] == "unix" and x["path"] == "/api/v1/keys" for x in lines)
    assert oct(os.stat(tcp.d.data_root / "access" / "audit.log").st_mode & 0o777) == "0o600"


def wait_for(pred: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_keys_survive_a_restart_and_sighup_reloads_limits(tmp_path: Path) -> None:
    port = free_port()
    d = ServinDaemon(("-H", f"tcp://127.0.0.1:{port}"))
    try:
        settings(d, **{"auth-failure-limit": "3/min"})
        d.start()
        tcp = Listener(d, port)
        made = tcp.new_key(scope="write")
        assert tcp.curl("GET", "/_ping", headers=key(made["key"]))[1]["x-ratelimit-limit"] == "100"
        settings(d, **{"auth-failure-limit": "3/min", "api-rate-limit": "7/min"})
        assert d.proc is not None
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: tcp.curl("GET", "/_ping", headers=key(made["key"]))[1]["x-ratelimit-limit"] == "7")
        d.stop()
        d.start()
        status, headers, _b = tcp.curl("GET", "/v1.41/containers/json", headers=key(made["key"]))
        assert status == 200 and headers["x-ratelimit-limit"] == "7"
        _s, _h, listed = tcp.curl("GET", "/api/v1/keys", unix=True)
        assert [k["id"] for k in listed["data"]["items"]] == [made["id"]]
        assert listed["data"]["items"][0]["last_used"] is not None  # written at shutdown
        for _ in range(3):
            assert tcp.curl("GET", "/_ping", headers=key("svk_wrong"))[0] == 401
        status, headers, body = tcp.curl("GET", "/_ping", headers=key(made["key"]))  # slowed before the check
        assert status == 429 and "too many failed authentication attempts" in body["message"]
        assert int(headers["retry-after"]) >= 1
    finally:
        d.cleanup()


def test_a_verified_client_certificate_is_a_principal(tmp_path: Path) -> None:
    certs = generate(tmp_path / "certs")
    port = free_port()
    d = ServinDaemon(("-H", f"tcp://127.0.0.1:{port}", "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
                      "--tlscert", str(certs / "server-cert.pem"), "--tlskey", str(certs / "server-key.pem")))
    try:
        d.start()
        out = subprocess.run(["curl", "-sS", "-D", "-", "--cacert", str(certs / "ca.pem"), "--cert",
                              str(certs / "cert.pem"), "--key", str(certs / "key.pem"),
                              f"https://127.0.0.1:{port}/_ping"], capture_output=True, text=True, timeout=30)
        assert out.stdout.startswith("HTTP/1.1 200") and "X-RateLimit-Limit: 100" in out.stdout, out
        tcp = Listener(d, port)
        wait_for(lambda: any(x["principal"].startswith("cert:") for x in tcp.audit()))
    finally:
        d.cleanup()


def test_the_unix_socket_can_require_keys(tmp_path: Path) -> None:
    d = ServinDaemon()
    try:
        settings(d, **{"auth-unix": "required"})
        d.launch(d.command())
        tcp = Listener(d, 0)
        wait_for(lambda: d.socket.exists() and _status(tcp) == 401, timeout=20)
        status, _h, body = tcp.curl("GET", "/_ping", unix=True)
        assert status == 401 and "authentication required" in body["message"]
    finally:
        d.cleanup()


def _status(tcp: Listener) -> int:
    try:
        return tcp.curl("GET", "/_ping", unix=True)[0]
    except subprocess.CalledProcessError:
        return 0

