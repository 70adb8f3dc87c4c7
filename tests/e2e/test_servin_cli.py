"""The `servin` command against a real daemon: `version` and `info` on its unix socket and on a TLS TCP
listener made with `servin certs generate` (a good client certificate, and none), agreeing with what the
docker CLI reads from the same daemon."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import ServinDaemon
from tests.support.listeners import generate, running_tls_daemon


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("cli") / "certs")


@pytest.fixture(scope="module")
def daemon_tls(certs: Path) -> Iterator[tuple[ServinDaemon, int]]:
    """One daemon on its unix socket and on a TLS port that requires a client certificate."""
    with running_tls_daemon(certs) as daemon_and_port:
        yield daemon_and_port


def servin(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SERVIN_", "DOCKER_"))}
    return subprocess.run([sys.executable, "-m", "servin.cli.main", *args], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_version_on_the_unix_socket(daemon_tls: tuple[ServinDaemon, int]) -> None:
    d, _port = daemon_tls
    res = servin("-H", d.host, "version")
    assert res.returncode == 0, res.stderr + d.log()
    server_version = d.docker("version", "--format", "{{.Server.Version}}").stdout.decode().strip()
    assert f" Host:              {d.host}\n" in res.stdout
    assert "\nServer: Servin Engine " in res.stdout and f"  Version:          {server_version}\n" in res.stdout
    api = d.docker("version", "--format", "{{.Server.APIVersion}}").stdout.decode().strip()
    assert f"  API version:      {api} (minimum version " in res.stdout


def test_info_on_the_unix_socket_agrees_with_docker_info(daemon_tls: tuple[ServinDaemon, int]) -> None:
    d, _port = daemon_tls
    res = servin("info", SERVIN_HOST=d.host)
    assert res.returncode == 0, res.stderr
    docker_info = json.loads(d.docker("info", "--format", "{{json .}}").stdout)
    assert f"\n Name: {docker_info['Name']}\n" in res.stdout
    assert f"\n ID: {docker_info['ID']}\n" in res.stdout
    assert f"\n Images: {docker_info['Images']}\n" in res.stdout and docker_info["Images"] >= 1
    assert f"\n Docker Root Dir: {d.data_root}\n" in res.stdout
    raw = servin("info", "--format", "json", DOCKER_HOST=d.host)
    assert raw.returncode == 0 and json.loads(raw.stdout)["ID"] == docker_info["ID"]


def test_tls_with_a_client_certificate(daemon_tls: tuple[ServinDaemon, int], certs: Path) -> None:
    _d, port = daemon_tls
    host = f"tcp://127.0.0.1:{port}"
    res = servin("--tlsverify", "-H", host, "version", SERVIN_CERT_PATH=str(certs))
    assert res.returncode == 0, res.stderr
    assert f" Host:              {host}\n" in res.stdout and "Server: Servin Engine" in res.stdout
    res = servin("info", DOCKER_HOST=host, DOCKER_TLS_VERIFY="1", DOCKER_CERT_PATH=str(certs))
    assert res.returncode == 0 and "\n Containers: " in res.stdout, res.stderr
    res = servin("--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "cert.pem"),
                 "--tlskey", str(certs / "key.pem"), "-H", f"tcp://localhost:{port}", "info", "--format", "json")
    assert res.returncode == 0 and json.loads(res.stdout)["OSType"] == "linux", res.stderr


def test_tls_without_a_client_certificate_is_refused(daemon_tls: tuple[ServinDaemon, int], certs: Path,
                                                     tmp_path: Path) -> None:
    _d, port = daemon_tls
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    (only_ca / "ca.pem").write_bytes((certs / "ca.pem").read_bytes())
    res = servin("--tlsverify", "-H", f"tcp://127.0.0.1:{port}", "version", SERVIN_CERT_PATH=str(only_ca))
    assert res.returncode == 1
    assert "\nServer:" not in res.stdout  # the client's part only
    assert res.stderr.startswith(f'error during connect: Get "https://127.0.0.1:{port}/version": '), res.stderr
    assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr


def test_plain_http_to_the_tls_port_and_a_stopped_daemon(daemon_tls: tuple[ServinDaemon, int],
                                                         tmp_path: Path) -> None:
    _d, port = daemon_tls
    res = servin("-H", f"tcp://127.0.0.1:{port}", "info")
    assert res.returncode == 1 and res.stderr.startswith("error during connect: ") and "--tlsverify" in res.stderr
    gone = tmp_path / "servin.sock"
    res = servin("-H", f"unix://{gone}", "info")
    assert res.returncode == 1
    assert res.stderr == f"Cannot connect to the Servin daemon at unix://{gone}. Is the daemon running?\n"


def test_api_keys_through_the_daemon(daemon_tls: tuple[ServinDaemon, int], certs: Path) -> None:
    """The key and token commands against the daemon's own /api/v1 (skipped on a tree without it: the
    management routes come from another branch of issue 12)."""
    d, port = daemon_tls
    probe = servin("-H", d.host, "api", "key", "list")
    if probe.returncode == 1 and "page not found" in probe.stderr:
        pytest.skip("this daemon has no /api/v1/keys yet")
    assert probe.returncode == 0, probe.stderr
    gen = servin("-H", d.host, "api", "key", "generate", "--name", "e2e-cli", "--scope", "read", "--expires", "1h")
    assert gen.returncode == 0 and "will not be shown again" in gen.stderr, gen.stderr
    key = gen.stdout.strip()
    key_id = key.split("_")[1]
    table = servin("-H", d.host, "api", "key", "list").stdout
    assert table.startswith("ID ") and any(line.startswith(key_id) and "e2e-cli" in line and " read " in line
                                           for line in table.splitlines())
    assert key not in table
    rows = [json.loads(line) for line in servin("-H", d.host, "api", "key", "list", "--format", "json").stdout
            .splitlines()]
    assert [r["name"] for r in rows if r["id"] == key_id] == ["e2e-cli"] and all("key" not in r for r in rows)
    # the key works over TCP (TLS with a client certificate here) and its read scope stops key management
    tcp = ("--tlsverify", "-H", f"tcp://127.0.0.1:{port}", "--api-key", key)
    assert servin(*tcp, "version", SERVIN_CERT_PATH=str(certs)).returncode == 0
    refused = servin(*tcp, "api", "key", "list", SERVIN_CERT_PATH=str(certs))
    assert refused.returncode == 1 and refused.stderr.startswith("Error response from daemon: "), refused.stderr
    token = servin("-H", d.host, "api", "token", "create", "--scope", "read", "--ttl", "15m")
    assert token.returncode == 0 and token.stdout.count(".") == 2, token.stderr
    assert servin("-H", d.host, "api", "key", "revoke", key_id).stdout == key_id + "\n"
    again = servin("-H", d.host, "api", "key", "revoke", key_id)
    assert again.returncode == 1 and again.stderr.startswith("Error response from daemon: ")
