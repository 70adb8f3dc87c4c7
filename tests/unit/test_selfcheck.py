"""The daemon's self-check behind /api/v1/monitoring/troubleshoot/connection, on made-up roots: listeners
(a socket that is there and answers, its mode, a group that does not exist, a TCP port nobody serves), the
data root's space, cgroup controllers, overlay and the supervisor binaries; and the daemon's registry
credentials read from a Docker config file."""

from __future__ import annotations

import base64
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from servin.daemon.registryauth import DockerConfigCredentials
from servin.daemon.selfcheck import SelfCheck
from servin.manage.findings import Finding, report
from servin.registry.auth import AuthConfig

pytestmark = pytest.mark.unit
GiB = 1 << 30


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "servin.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen()
        os.chmod(path, 0o660)
        yield path


def healthy(tmp_path: Path, **kw: object) -> SelfCheck:
    """A host where everything is in order: cgroup v2 with every controller, overlay listed, binaries there."""
    cg = tmp_path / "cgroup"
    cg.mkdir(exist_ok=True)
    (cg / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    (proc / "filesystems").write_text("nodev\tsysfs\nnodev\toverlay\n\text4\n")
    binary = tmp_path / "servin-shim"
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    defaults: dict[str, object] = dict(hosts=(), management_hosts=(), group="", data_root=tmp_path,
                                       cgroup_root=cg, proc=proc, modules=tmp_path / "modules",
                                       binaries=(binary,), space=lambda p: (100 * GiB, 200 * GiB))
    return SelfCheck(**{**defaults, **kw})  # type: ignore[arg-type]


def test_all_in_order(tmp_path: Path, listening: Path) -> None:
    check = healthy(tmp_path, hosts=(f"unix://{listening}",))
    assert check() == []
    assert report(check()) == {"connected": True, "issues": [], "fixes": []}


def test_a_missing_socket_blocks_and_says_how_to_start(tmp_path: Path) -> None:
    [finding] = healthy(tmp_path, hosts=(f"unix://{tmp_path}/none.sock",))()
    assert finding.blocking and "does not exist" in finding.issue and "sudo systemctl start servin" in finding.fixes


def test_a_leftover_socket_nobody_answers(tmp_path: Path) -> None:
    path = tmp_path / "old.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))  # bound, never listening: what a killed daemon leaves
    os.chmod(path, 0o660)
    [finding] = healthy(tmp_path, hosts=(f"unix://{path}",))()
    assert finding.blocking and "nothing answers on the socket" in finding.issue


def test_socket_mode_and_group(tmp_path: Path, listening: Path) -> None:
    os.chmod(listening, 0o666)
    findings = healthy(tmp_path, hosts=(f"unix://{listening}",), group="servin-no-such-group")()
    assert [f.blocking for f in findings] == [False, False]
    assert "mode 0666" in findings[0].issue and f"sudo chmod 0660 {listening}" in findings[0].fixes
    assert "'servin-no-such-group'" in findings[1].issue and "-G" in findings[1].issue
    assert "sudo groupadd servin-no-such-group" in findings[1].fixes
    assert any("usermod -aG servin-no-such-group $USER" in fix for fix in findings[1].fixes)


def test_tcp_listeners(tmp_path: Path, listening: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert healthy(tmp_path, hosts=(f"tcp://127.0.0.1:{port}",))() == []
        assert healthy(tmp_path, hosts=(f"tcp://0.0.0.0:{port}",))() == []
    [finding] = healthy(tmp_path, hosts=(f"tcp://127.0.0.1:{port}",))()
    assert finding.blocking and finding.issue == f"nothing answers on tcp://127.0.0.1:{port}"
    # the socket still answers: a dead TCP listener is worth knowing, not a lost connection
    [finding] = healthy(tmp_path, hosts=(f"unix://{listening}",), management_hosts=(f"tcp://127.0.0.1:{port}",))()
    assert not finding.blocking
    assert report([finding])["connected"] is True


@pytest.mark.parametrize("free,total,issue", [
    (100 * GiB, 200 * GiB, False), (GiB - 1, 4 * GiB, True), (4 * GiB, 100 * GiB, True), (0, 10 * GiB, True)])
def test_data_root_space(tmp_path: Path, free: int, total: int, issue: bool) -> None:
    findings = healthy(tmp_path, data_root=tmp_path / "not" / "yet", space=lambda p: (free, total))()
    assert bool(findings) is issue
    if issue:
        assert "MiB free" in findings[0].issue and findings[0].blocking is (free == 0)
        assert any("docker system prune" in fix for fix in findings[0].fixes)


def test_cgroup_controllers_and_none_at_all(tmp_path: Path) -> None:
    check = healthy(tmp_path)
    (tmp_path / "cgroup" / "cgroup.controllers").write_text("cpu memory\n")
    [finding] = check()
    assert finding.issue.startswith("cgroup v2 lacks the controller(s) pids, io, cpuset") and not finding.blocking
    empty = tmp_path / "empty"
    empty.mkdir()
    [finding] = healthy(tmp_path, cgroup_root=empty)()
    assert finding.blocking and "no cgroup file system" in finding.issue


def test_overlay_listed_loadable_or_missing(tmp_path: Path) -> None:
    check = healthy(tmp_path)
    (tmp_path / "proc" / "filesystems").write_text("nodev\tsysfs\n\text4\n")
    [finding] = check()
    assert finding.blocking and "sudo modprobe overlay" in finding.fixes
    module = tmp_path / "modules" / os.uname().release / "kernel" / "fs" / "overlayfs"
    module.mkdir(parents=True)
    (module / "overlay.ko.xz").write_bytes(b"")
    assert check() == []


def test_missing_binaries_block(tmp_path: Path) -> None:
    [finding] = healthy(tmp_path, binaries=(tmp_path / "servin-init",))()
    assert finding.blocking and finding.issue.startswith("servin-init is missing")


def test_report_joins_fixes_once() -> None:
    findings = [Finding(issue="a", fixes=("x", "y"), blocking=False), Finding(issue="b", fixes=("y",), blocking=True)]
    assert report(findings) == {"connected": False, "issues": ["a", "b"], "fixes": ["x", "y"]}


def test_registry_credentials_from_a_docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    creds = DockerConfigCredentials()
    assert creds("127.0.0.1:5000") == AuthConfig()  # no file: anonymous
    userpass = base64.b64encode(b"alice:wonderland").decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "127.0.0.1:5000": {"auth": userpass},
        "https://index.docker.io/v1/": {"identitytoken": "refresh-me"},
    }, "credHelpers": {"ghcr.io": "desktop"}}))
    assert creds("127.0.0.1:5000") == AuthConfig(username="alice", password="wonderland",
                                                 server_address="127.0.0.1:5000")
    assert creds("docker.io").identity_token == "refresh-me"
    assert creds("ghcr.io") == AuthConfig()  # a helper's registry: anonymous, and the log says why
    (tmp_path / "config.json").write_text("{not json")
    assert creds("127.0.0.1:5000") == AuthConfig()
