"""The `servin` CLI and `servin.client.APIClient` against a stand-in daemon that serves the management API's
contract (tests/support/manage_stub.py): what a user sees on stdout and stderr, the exit status, and what
reached the daemon (headers, bodies)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from servin.access.certs import generate
from servin.access.tls import ServerTLS, server_context
from servin.cli.main import main
from servin.client import APIClient, APIError, DaemonUnreachable, TLSConfig
from tests.support.manage_stub import ADMIN_KEY, Forced, StubDaemon

ENV_PREFIXES = ("SERVIN_", "DOCKER_")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.docker certificates of the machine's


@pytest.fixture
def stub(tmp_path: Path) -> Iterator[StubDaemon]:
    d = StubDaemon(tmp_path).start()
    yield d
    d.stop()


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[StubDaemon]:
    """A daemon that asks every request for a key or token."""
    d = StubDaemon(tmp_path, require_auth=True).start()
    yield d
    d.stop()


def servin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's usage errors
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


# api key generate / list / revoke


def test_generate_prints_the_key_once_and_says_so(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = servin(capsys, "-H", stub.host, "api", "key", "generate", "--name", "ci", "--scope", "write",
                              "--expires", "30d", "--rate-limit", "10/s")
    assert status == 0, err
    (key,) = stub.keys.values()
    assert out == key.secret + "\n" and out.startswith(f"svk_{key.id}_")
    assert "will not be shown again" in err and key.id in err and "scope write" in err and "10/s" in err
    req = stub.requests[-1]
    assert (req.method, req.path) == ("POST", "/api/v1/keys")
    assert req.body == {"name": "ci", "scope": "write", "expires": "30d", "rate_limit": "10/s"}
    assert req.headers["Content-Type"] == "application/json"
    assert servin(capsys, "-H", stub.host, "api", "key", "list")[1].count(key.secret) == 0


def test_generate_defaults_to_read_and_the_daemon_limits(stub: StubDaemon,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = servin(capsys, "-H", stub.host, "api", "key", "generate", "--name", "dash")
    assert status == 0
    assert stub.requests[-1].body == {"name": "dash", "scope": "read", "expires": None, "rate_limit": None}
    assert "never expires" in err and "the daemon default" in err


def test_list_is_a_table_of_every_key(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(timezone.utc)
    a = stub.add_key("ci", "write", rate_limit="10/s", expires=now + timedelta(days=30, minutes=1))
    a.created = now - timedelta(minutes=3)
    a.last_used = now - timedelta(seconds=30)
    b = stub.add_key("dashboard", "read")
    for n in range(120):  # more than one page of the largest size
        stub.add_key(f"bulk{n}")
    status, out, _err = servin(capsys, "-H", stub.host, "api", "key", "list")
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "SCOPE", "CREATED", "LAST", "USED", "EXPIRES", "RATE", "LIMIT"]
    assert len(lines) == 1 + 122
    row_a = next(line for line in lines if line.startswith(a.id))
    assert "ci" in row_a and "write" in row_a and "3 minutes ago" in row_a and "30 seconds ago" in row_a
    assert "in 4 weeks" in row_a and row_a.endswith("10/s")
    row_b = next(line for line in lines if line.startswith(b.id))
    assert "never" in row_b and row_b.endswith("default")
    # columns line up: every header starts where its values start
    col = lines[0].index("SCOPE")
    assert row_a[col:].startswith("write") and row_b[col:].startswith("read")
    pages = [r.query for r in stub.requests if r.path == "/api/v1/keys"]
    assert pages == [{"page": "1", "limit": "100"}, {"page": "2", "limit": "100"}]


def test_list_format_json_is_one_object_per_line_without_secrets(stub: StubDaemon,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    k = stub.add_key("ci", "admin", rate_limit="600/min")
    status, out, _err = servin(capsys, "-H", stub.host, "api", "key", "list", "--format", "json")
    assert status == 0
    (line,) = out.splitlines()
    item = json.loads(line)
    assert item == {**k.wire(), "created": item["created"]} and "key" not in item
    assert datetime.fromisoformat(item["created"]) == k.created.replace(microsecond=k.created.microsecond)


def test_revoke_prints_each_id_and_fails_on_an_unknown_one(stub: StubDaemon,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    k = stub.add_key("old")
    status, out, err = servin(capsys, "-H", stub.host, "api", "key", "revoke", "000000000bad", k.id)
    assert status == 1
    assert out == k.id + "\n" and k.id not in stub.keys
    assert err == "Error response from daemon: no such key: 000000000bad\n"


def test_token_create_prints_the_token(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = servin(capsys, "-H", stub.host, "api", "token", "create", "--scope", "write", "--ttl", "15m",
                              "--subject", "ci-runner")
    assert status == 0, err
    token = out.strip()
    assert stub.tokens[token] == ("write", "ci-runner")
    assert stub.requests[-1].body == {"scope": "write", "ttl": "15m", "subject": "ci-runner"}
    assert "ci-runner" in err and "scope write" in err and "in 15 minutes" in err or "in 14 minutes" in err


def test_token_defaults_are_read_and_the_daemons_ttl(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert servin(capsys, "-H", stub.host, "api", "token", "create")[0] == 0
    assert stub.requests[-1].body == {"scope": "read"}


# credentials and the daemon's refusals


def test_api_key_flag_and_env_send_x_api_key(locked: StubDaemon, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert servin(capsys, "-H", locked.host, "--api-key", ADMIN_KEY, "api", "key", "list")[0] == 0
    assert locked.requests[-1].headers["X-API-Key"] == ADMIN_KEY
    assert "Authorization" not in locked.requests[-1].headers
    monkeypatch.setenv("SERVIN_HOST", locked.host)
    monkeypatch.setenv("SERVIN_API_KEY", ADMIN_KEY)
    assert servin(capsys, "api", "key", "list")[0] == 0
    assert locked.requests[-1].headers["X-API-Key"] == ADMIN_KEY


def test_a_token_is_sent_as_bearer(locked: StubDaemon, capsys: pytest.CaptureFixture[str],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    status, out, _ = servin(capsys, "-H", locked.host, "--api-key", ADMIN_KEY, "api", "token", "create",
                            "--scope", "admin")
    assert status == 0
    token = out.strip()
    monkeypatch.setenv("SERVIN_TOKEN", token)
    assert servin(capsys, "-H", locked.host, "api", "key", "list")[0] == 0
    assert locked.requests[-1].headers["Authorization"] == f"Bearer {token}"
    assert "X-API-Key" not in locked.requests[-1].headers


def test_missing_credentials_are_the_daemons_401(locked: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = servin(capsys, "-H", locked.host, "api", "key", "list")
    assert (status, out) == (1, "")
    assert err == "Error response from daemon: authentication required: send X-API-Key or Authorization: Bearer\n"
    status, _out, err = servin(capsys, "-H", locked.host, "info")  # Docker's {"message", "code"} body
    assert status == 1 and err.startswith("Error response from daemon: authentication required")


def test_a_lower_scope_is_the_daemons_403(locked: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    reader = locked.add_key("reader", "read")
    status, _out, err = servin(capsys, "-H", locked.host, "--api-key", reader.secret, "api", "key", "list")
    assert status == 1 and err == "Error response from daemon: scope read may not manage keys (admin needed)\n"
    writer = locked.add_key("writer", "write")
    locked.keys[writer.id].scope = "admin"
    status, _out, err = servin(capsys, "-H", locked.host, "--api-key", writer.secret, "api", "token", "create",
                               "--scope", "admin")
    assert status == 0, err


def test_bad_input_is_the_daemons_validation_error(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = servin(capsys, "-H", stub.host, "api", "key", "generate", "--name", "x", "--expires", "soon")
    assert (status, out) == (1, "")
    assert err == "Error response from daemon: invalid duration 'soon'\n"


def test_usage_errors_exit_2(stub: StubDaemon, capsys: pytest.CaptureFixture[str],
                             monkeypatch: pytest.MonkeyPatch) -> None:
    assert servin(capsys, "-H", stub.host, "api", "key", "generate", "--name", "x", "--scope", "root")[0] == 2
    assert servin(capsys, "-H", stub.host, "api", "key", "generate")[0] == 2  # --name is required
    assert servin(capsys, "-H", stub.host, "--api-key", "a", "--token", "b", "version")[0] == 2
    status, _out, err = servin(capsys, "-H", stub.host, "-H", stub.host, "version")
    assert status == 2 and "specify only one -H" in err
    status, _out, err = servin(capsys, "-H", stub.host, "--api-key", "a\nInjected: 1", "version")
    assert status == 2 and "line break" in err
    monkeypatch.setenv("SERVIN_API_KEY", "a")
    monkeypatch.setenv("SERVIN_TOKEN", "b")
    status, _out, err = servin(capsys, "-H", stub.host, "version")
    assert status == 2 and "SERVIN_API_KEY and SERVIN_TOKEN are both set" in err
    servin(capsys, "-H", stub.host, "--token", "b", "info")  # a flag picks one
    assert stub.requests[-1].headers["Authorization"] == "Bearer b"
    assert "X-API-Key" not in stub.requests[-1].headers


def test_client_flags_before_local_commands_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _out, err = servin(capsys, "--tlsverify", "certs", "generate", str(tmp_path / "c"))
    assert status == 2 and "--tlsverify" in err and "client options" in err
    assert not (tmp_path / "c").exists()


def test_a_daemon_without_the_management_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = StubDaemon(tmp_path, manage=False).start()
    try:
        status, _out, err = servin(capsys, "-H", d.host, "api", "key", "list")
    finally:
        d.stop()
    assert status == 1 and err == "Error response from daemon: page not found\n"


def test_a_non_json_error_and_an_answer_without_envelope(stub: StubDaemon,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    stub.forced += [Forced(502, ""), Forced(503, "upstream down\n")]
    status, _out, err = servin(capsys, "-H", stub.host, "info")
    assert status == 1 and err == "Error response from daemon: 502 Bad Gateway\n"
    status, _out, err = servin(capsys, "-H", stub.host, "info")
    assert status == 1 and err == "Error response from daemon: upstream down\n"
    stub.forced.append(Forced(200, {"items": []}))
    status, _out, err = servin(capsys, "-H", stub.host, "api", "key", "list")
    assert status == 1 and "without the management API's envelope" in err
    stub.forced.append(Forced(200, {"success": True, "data": {"items": "no"}, "error": None}))
    status, _out, err = servin(capsys, "-H", stub.host, "api", "key", "list")
    assert status == 1 and "malformed answer to GET /api/v1/keys" in err


# connecting


def test_no_daemon_is_dockers_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock = tmp_path / "none.sock"
    for cmd in (["version"], ["info"], ["api", "key", "list"], ["api", "token", "create"]):
        status, _out, err = servin(capsys, "-H", f"unix://{sock}", *cmd)
        assert status == 1
        assert err == f"Cannot connect to the Servin daemon at unix://{sock}. Is the daemon running?\n"


def test_host_from_servin_host_then_docker_host(stub: StubDaemon, capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", stub.host)
    assert servin(capsys, "version")[0] == 0
    monkeypatch.setenv("SERVIN_HOST", f"unix://{tmp_path}/elsewhere.sock")
    status, _out, err = servin(capsys, "version")
    assert status == 1 and "elsewhere.sock" in err
    status, _out, err = servin(capsys, "-H", stub.host, "version")
    assert status == 0


def test_ssh_and_fd_hosts_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = servin(capsys, "-H", "ssh://root@host", "version")
    assert (status, out) == (2, "") and "ssh:// hosts are not supported" in err
    status, _out, err = servin(capsys, "-H", "fd://", "info")
    assert status == 2 and "fd:// is for the daemon's own listeners" in err
    status, _out, err = servin(capsys, "-H", "npipe:////./pipe/docker_engine", "info")
    assert status == 2 and "unsupported host scheme npipe://" in err
    status, _out, err = servin(capsys, "-H", "localhost:2375", "info")
    assert status == 2 and "invalid host" in err


def test_tls_files_without_tls_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _out, err = servin(capsys, "-H", "tcp://127.0.0.1:1", "--tlscert", str(tmp_path / "c.pem"), "version")
    assert status == 2 and "--tlscert given without --tls or --tlsverify" in err
    status, _out, err = servin(capsys, "-H", "tcp://127.0.0.1:1", "--tls", "--tlscacert", str(tmp_path / "ca.pem"),
                               "version")
    assert status == 2 and "--tlscacert needs --tlsverify" in err
    status, _out, err = servin(capsys, "-H", "unix:///x.sock", "--tlsverify", "version")
    assert status == 2 and "TLS is for tcp:// hosts" in err


# version and info


def test_version_prints_client_and_server(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = servin(capsys, "-H", stub.host, "version")
    assert status == 0
    client, server = out.split("\n\n")
    assert client.startswith("Client: Servin\n Version:           0.1.0\n")
    assert f" Host:              {stub.host}" in client
    assert server.startswith("Server: Servin Engine 0.1.0\n Engine:\n  Version:          29.7.2+servin.0.1.0\n")
    assert "  API version:      1.55 (minimum version 1.24)\n" in server
    assert "  Python version:   python3." in server and "  OS/Arch:          linux/amd64\n" in server
    assert " servin-shim:\n  Version:          0.1.0\n  GitCommit:        servin\n" in server


def test_version_format_json(stub: StubDaemon, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, out, _err = servin(capsys, "-H", stub.host, "version", "--format", "json")
    doc = json.loads(out)
    assert status == 0 and doc["Server"]["ApiVersion"] == "1.55" and doc["Client"]["Host"] == stub.host
    status, out, err = servin(capsys, "-H", f"unix://{tmp_path}/none.sock", "version", "--format", "json")
    assert status == 1 and json.loads(out)["Server"] is None and "Cannot connect" in err


def test_info_is_a_readable_summary(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = servin(capsys, "-H", stub.host, "info")
    assert status == 0
    assert "Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 3\n" in out
    for line in (" Storage Driver: overlay2", "  Backing Filesystem: extfs", " Cgroup Version: 2",
                 "  Network: bridge host null", " Security Options:", "  seccomp", "   Profile: default",
                 "  cgroupns", " CPUs: 4", " Total Memory: 8GiB", " Name: stubhost",
                 " Insecure Registries:", "  127.0.0.0/8", " Live Restore Enabled: true"):
        assert line + "\n" in out, line


def test_info_format_json_is_the_daemons_answer(stub: StubDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _err = servin(capsys, "-H", stub.host, "info", "--format", "json")
    doc = json.loads(out)
    assert status == 0 and doc["Name"] == "stubhost" and doc["MemTotal"] == 8 << 30 and len(out.splitlines()) == 1


# TLS


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    generate(tmp_path / "certs", [])
    return tmp_path / "certs"


@pytest.fixture
def tls_stub(tmp_path: Path, certs: Path) -> Iterator[StubDaemon]:
    ctx = server_context(ServerTLS(cert=certs / "server-cert.pem", key=certs / "server-key.pem",
                                   ca=certs / "ca.pem", verify=True))
    (tmp_path / "tls").mkdir()
    d = StubDaemon(tmp_path / "tls", tls=ctx).start()
    yield d
    d.stop()


def test_tlsverify_with_the_cert_path(tls_stub: StubDaemon, certs: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVIN_CERT_PATH", str(certs))
    status, out, err = servin(capsys, "--tlsverify", "-H", f"tcp://127.0.0.1:{tls_stub.port}", "version")
    assert status == 0, err
    assert f"Host:              tcp://127.0.0.1:{tls_stub.port}" in out and "Server: Servin Engine" in out
    monkeypatch.delenv("SERVIN_CERT_PATH")
    monkeypatch.setenv("DOCKER_CERT_PATH", str(certs))
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{tls_stub.port}")
    assert servin(capsys, "api", "key", "list")[0] == 0


def test_tls_flags_name_the_files(tls_stub: StubDaemon, certs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = servin(capsys, "--tlsverify", "--tlscacert", str(certs / "ca.pem"), "--tlscert",
                               str(certs / "cert.pem"), "--tlskey", str(certs / "key.pem"),
                               "-H", f"tcp://localhost:{tls_stub.port}", "info")
    assert status == 0, err
    status, _out, err = servin(capsys, "--tlsverify", "--tlscacert", str(certs / "nope.pem"),
                               "-H", f"tcp://localhost:{tls_stub.port}", "info")
    assert status == 2 and f"could not read CA certificate \"{certs / 'nope.pem'}\"" in err


def test_the_server_name_is_checked(tls_stub: StubDaemon, certs: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SERVIN_CERT_PATH", str(certs))
    # the same listener through an address the certificate does not name: 127.0.0.1 mapped into IPv6
    status, _out, err = servin(capsys, "--tlsverify", "-H", f"tcp://[::ffff:127.0.0.1]:{tls_stub.port}", "info")
    assert status == 1
    assert err.startswith(f'error during connect: Get "https://[::ffff:127.0.0.1]:{tls_stub.port}/info": '
                          "tls: failed to verify certificate: "), err
    # --tls alone encrypts without checking the name (or the CA)
    status, _out, err = servin(capsys, "--tls", "-H", f"tcp://[::ffff:127.0.0.1]:{tls_stub.port}", "info")
    assert status == 0, err


def test_a_certificate_of_another_ca_is_not_trusted(tls_stub: StubDaemon, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other"
    generate(other, [])
    status, _out, err = servin(capsys, "--tlsverify", "--tlscacert", str(other / "ca.pem"), "--tlscert",
                               str(other / "cert.pem"), "--tlskey", str(other / "key.pem"),
                               "-H", f"tcp://127.0.0.1:{tls_stub.port}", "version")
    assert status == 1 and "tls: failed to verify certificate: " in err


def test_a_missing_client_certificate_is_refused(tls_stub: StubDaemon, certs: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    status, _out, err = servin(capsys, "--tlsverify", "--tlscacert", str(certs / "ca.pem"),
                               "-H", f"tcp://127.0.0.1:{tls_stub.port}", "info")
    assert status == 1 and err.startswith(f'error during connect: Get "https://127.0.0.1:{tls_stub.port}/info": ')
    assert "client certificate" in err and err.count("\n") == 1
    status, _out, err = servin(capsys, "-H", f"tcp://127.0.0.1:{tls_stub.port}", "info")  # plain HTTP
    assert status == 1 and err.startswith(f'error during connect: Get "http://127.0.0.1:{tls_stub.port}/info": ')
    assert "try --tlsverify" in err


# the Python client


def test_apiclient_from_python(stub: StubDaemon) -> None:
    c = APIClient(base_url=stub.host)
    assert c.ping() is True
    assert c.version()["ApiVersion"] == "1.55" and c.info()["Name"] == "stubhost"
    new = c.create_key("py", scope="write", expires="1h")
    assert new.secret.startswith(f"svk_{new.key.id}_") and new.key.scope == "write"
    assert new.key.expires is not None and new.key.expires > datetime.now(timezone.utc)
    assert [k.id for k in c.all_keys()] == [new.key.id]
    page = c.keys(limit=5)
    assert (page.page, page.limit, page.total, page.pages) == (1, 5, 1, 1)
    token = c.create_token(scope="read", ttl="2h")
    assert token.scope == "read" and token.subject == "unix"
    c.revoke_key(new.key.id)
    with pytest.raises(APIError) as exc:
        c.revoke_key(new.key.id)
    assert (exc.value.status, exc.value.code) == (404, "RESOURCE_NOT_FOUND")


def test_apiclient_errors_carry_status_code_and_retry_after(stub: StubDaemon) -> None:
    stub.forced.append(Forced(429, {"message": "rate limit exceeded", "code": "RATE_LIMIT_EXCEEDED"},
                              {"Retry-After": "3"}))
    with pytest.raises(APIError) as exc:
        APIClient(stub.host, api_key=ADMIN_KEY).info()
    assert (exc.value.status, exc.value.code, exc.value.retry_after) == (429, "RATE_LIMIT_EXCEEDED", 3)
    assert stub.requests[-1].headers["X-API-Key"] == ADMIN_KEY
    with pytest.raises(DaemonUnreachable):
        APIClient("tcp://127.0.0.1:1").ping()


def test_apiclient_tls(tls_stub: StubDaemon, certs: Path) -> None:
    tls = TLSConfig(ca_cert=certs / "ca.pem", client_cert=(certs / "cert.pem", certs / "key.pem"))
    assert APIClient(f"https://127.0.0.1:{tls_stub.port}", tls=tls).ping() is True
    assert APIClient(f"tcp://127.0.0.1:{tls_stub.port}", tls=tls).ping() is True
    with pytest.raises(DaemonUnreachable, match="failed to verify certificate"):
        APIClient(f"https://127.0.0.1:{tls_stub.port}").ping()  # the system's CAs do not know the stub's


def test_credentials_in_clear_off_the_host_are_warned_about(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*_args: object, **_kw: object) -> socket.socket:
        raise ConnectionRefusedError  # no packet leaves for the documentation address

    monkeypatch.setattr(socket, "create_connection", refused)
    status, _out, err = servin(capsys, "-H", "tcp://192.0.2.1:1", "--api-key", "k", "version")
    assert err.startswith("WARNING: sending the API key or token in clear to tcp://192.0.2.1:1")
    assert status == 1 and err.endswith("Cannot connect to the Servin daemon at tcp://192.0.2.1:1. Is the daemon "
                                        "running?\n")
    for host in ("tcp://127.0.0.1:1", "tcp://localhost:1", "tcp://[::1]:1"):
        _status, _out, err = servin(capsys, "-H", host, "--token", "t", "version")
        assert "WARNING" not in err, host
    _status, _out, err = servin(capsys, "-H", "tcp://192.0.2.1:1", "version")
    assert "WARNING" not in err  # nothing secret to send
