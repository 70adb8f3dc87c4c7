"""TLS as dockerd does it, through the docker CLI and docker-py: --tlsverify with certificates from
`servin certs generate`; wrong or missing client certificates are refused at the handshake; plain HTTP
gets nothing; plain TCP off loopback needs --tls=false and then warns; --tls alone verifies clients as
dockerd does, and TLS without client certificates (--tlsverify=false) off loopback warns."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
from docker.tls import TLSConfig

from tests.support.daemon import ServinDaemon, running_daemon
from tests.support.listeners import free_port, generate, running_tls_daemon


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("tls") / "certs")


@pytest.fixture(scope="module")
def tls_daemon(certs: Path) -> Iterator[tuple[ServinDaemon, int]]:
    with running_tls_daemon(certs) as daemon_and_port:
        yield daemon_and_port


def docker_cli(d: ServinDaemon, cert_path: Path, *args: str, tls: bool = True,
               port: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in d.env.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = d.env["DOCKER_CONFIG"]
    env["DOCKER_CERT_PATH"] = str(cert_path)
    flags = ["--tlsverify"] if tls else []
    return subprocess.run(["docker", *flags, "-H", f"tcp://127.0.0.1:{port}", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_docker_cli_over_tls(tls_daemon: tuple[ServinDaemon, int], certs: Path) -> None:
    d, port = tls_daemon
    res = docker_cli(d, certs, "version", "--format", "{{.Server.Version}}", port=port)
    assert res.returncode == 0 and res.stdout.strip(), res.stderr
    res = docker_cli(d, certs, "run", "--rm", "busybox", "true", port=port)
    assert res.returncode == 0, res.stderr + d.log()


def test_docker_cli_with_docker_tls_verify(tls_daemon: tuple[ServinDaemon, int], certs: Path) -> None:
    d, port = tls_daemon
    env = dict(d.env, DOCKER_HOST=f"tcp://127.0.0.1:{port}", DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs))
    res = subprocess.run(["docker", "info", "--format", "{{.Name}}"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0 and res.stdout.strip(), res.stderr


def test_docker_py_with_tlsconfig(tls_daemon: tuple[ServinDaemon, int], certs: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _d, port = tls_daemon
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):  # requests lets these override TLSConfig's CA
        monkeypatch.delenv(var, raising=False)
    tls = TLSConfig(client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")), ca_cert=str(certs / "ca.pem"),
                    verify=True)
    client = docker.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="auto", timeout=60)
    try:
        assert client.ping() is True
        assert client.containers.run("busybox", ["echo", "over tls"], remove=True) == b"over tls\n"
    finally:
        client.close()


def test_missing_client_certificate_is_refused(tls_daemon: tuple[ServinDaemon, int], certs: Path,
                                               tmp_path: Path) -> None:
    d, port = tls_daemon
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    (only_ca / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    res = docker_cli(d, only_ca, "version", "--format", "{{.Server.Version}}", port=port)
    # TLS 1.3: the client's side of the handshake ends before the daemon checks its certificate, so the
    # CLI sees the refusal as the connection closing under its first request
    assert res.returncode != 0 and "error during connect" in res.stderr and not res.stdout.strip(), res.stderr
    assert _served(port, cafile=certs / "ca.pem", client=None) is False


def test_client_certificate_of_another_ca_is_refused(tls_daemon: tuple[ServinDaemon, int], certs: Path,
                                                     tmp_path: Path) -> None:
    d, port = tls_daemon
    other = generate(tmp_path / "other")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())  # trusts the server...
    for name in ("cert.pem", "key.pem"):  # ...but presents a client certificate the daemon's CA never signed
        (mixed / name).write_bytes((other / name).read_bytes())
        os.chmod(mixed / name, 0o600)
    res = docker_cli(d, mixed, "version", "--format", "{{.Server.Version}}", port=port)
    # TLS 1.3: the client's side of the handshake ends before the daemon checks its certificate, so the
    # CLI sees the refusal as the connection closing under its first request
    assert res.returncode != 0 and "error during connect" in res.stderr and not res.stdout.strip(), res.stderr
    assert _served(port, cafile=certs / "ca.pem", client=(other / "cert.pem", other / "key.pem")) is False
    assert _served(port, cafile=certs / "ca.pem", client=(certs / "cert.pem", certs / "key.pem")) is True


def test_plain_http_to_the_tls_port_gets_nothing(tls_daemon: tuple[ServinDaemon, int], certs: Path) -> None:
    d, port = tls_daemon
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        try:
            answer = s.recv(256)
        except OSError:
            answer = b""
    assert b"200 OK" not in answer and b"OK" != answer[-2:]
    res = docker_cli(d, certs, "version", "--format", "{{.Server.Version}}", tls=False, port=port)
    assert res.returncode != 0


def test_only_tls_12_and_later(tls_daemon: tuple[ServinDaemon, int], certs: Path) -> None:
    _d, port = tls_daemon
    ctx = _client_context(certs / "ca.pem", (certs / "cert.pem", certs / "key.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except ssl.SSLError:
        pass
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass


def _client_context(cafile: Path, client: tuple[Path, Path] | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(cafile))
    if client:
        ctx.load_cert_chain(str(client[0]), str(client[1]))
    return ctx


def _served(port: int, *, cafile: Path, client: tuple[Path, Path] | None) -> bool:
    """Whether a TLS client with this certificate gets an answer to GET /_ping."""
    ctx = _client_context(cafile, client)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return s.recv(64).startswith(b"HTTP/1.1 200")
    except (ssl.SSLError, ConnectionError):
        return False


def test_plain_tcp_off_loopback_refused_without_tls_false(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "daemon.json").write_text("{}")
    res = subprocess.run([sys.executable, "-m", "servin.cli.main", "daemon", "--config-file",
                          str(tmp_path / "daemon.json"),
                          "-H", f"tcp://0.0.0.0:{port}"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"refusing to listen on tcp://0.0.0.0:{port} without TLS" in res.stderr
    assert "--tlsverify" in res.stderr and "--tls=false" in res.stderr


def test_plain_tcp_off_loopback_with_tls_false_warns() -> None:
    port = free_port()  # a throwaway port, listened on for as long as the check takes
    d = ServinDaemon(("-H", f"tcp://0.0.0.0:{port}", "--tls=false", "--auth-tcp", "none"))
    try:
        d.start()
        assert "without encryption" in d.log() and "equivalent to root access" in d.log()
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert s.recv(64).startswith(b"HTTP/1.1 200")
    finally:
        d.cleanup()


def _tls_files(certs: Path) -> tuple[str, ...]:
    return ("--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "server-cert.pem"),
            "--tlskey", str(certs / "server-key.pem"))


def test_tls_alone_requires_a_client_certificate_as_dockerd(certs: Path) -> None:
    port = free_port()
    with running_daemon(("-H", f"tcp://127.0.0.1:{port}", "--tls", *_tls_files(certs))):
        assert _served(port, cafile=certs / "ca.pem", client=None) is False
        assert _served(port, cafile=certs / "ca.pem", client=(certs / "cert.pem", certs / "key.pem")) is True


def test_tlsverify_false_off_loopback_serves_tls_without_certificates_and_warns(certs: Path) -> None:
    port = free_port()  # a throwaway port, listened on for as long as the check takes
    # no credential asked either (a key or token is otherwise required on TCP): TLS alone is what is looked at
    d = ServinDaemon(("-H", f"tcp://0.0.0.0:{port}", "--tlsverify=false", "--auth-tcp", "none", *_tls_files(certs)))
    try:
        d.start()
        assert f"tcp://0.0.0.0:{port} speaks TLS but asks clients for no certificate" in d.log()
        assert "root" in d.log()
        assert _served(port, cafile=certs / "ca.pem", client=None) is True
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:  # and it is TLS, not plain HTTP
            s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                answer = s.recv(64)
            except OSError:
                answer = b""
            assert not answer.startswith(b"HTTP/1.1 200")
    finally:
        d.cleanup()
