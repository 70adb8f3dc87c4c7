"""Docker's seccomp confinement through the docker CLI and docker-py: the default profile, unconfined,
a custom profile file, a bad profile refused at create, the daemon's --seccomp-profile and /info."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon

MKDIR = {"defaultAction": "SCMP_ACT_ALLOW",
         "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}


def seccomp_mode(d: ServinDaemon, *opts: str) -> str:
    res = d.docker("run", "--rm", *opts, "busybox", "grep", "Seccomp:", "/proc/self/status")
    return res.stdout.decode().split()[1]


def test_default_profile(servin: ServinDaemon) -> None:
    assert seccomp_mode(servin) == "2"
    res = servin.docker("run", "--rm", "busybox", "unshare", "-U", "true", check=False)
    assert res.returncode == 1 and b"Operation not permitted" in res.stderr
    assert servin.docker("run", "--rm", "busybox", "true").returncode == 0
    # an exec runs under the container's filter, a privileged one too (as with runc)
    cid = servin.docker("run", "-d", "busybox", "sleep", "60").stdout.decode().strip()
    try:
        for opts in ((), ("--privileged",)):
            out = servin.docker("exec", *opts, cid, "grep", "Seccomp:", "/proc/self/status").stdout
            assert out.split()[1] == b"2", opts
    finally:
        servin.docker("rm", "-f", cid)


def test_unconfined(servin: ServinDaemon) -> None:
    assert seccomp_mode(servin, "--security-opt", "seccomp=unconfined") == "0"
    assert servin.docker("run", "--rm", "--security-opt", "seccomp=unconfined", "busybox",
                         "unshare", "-U", "true").returncode == 0
    cid = servin.docker("create", "--security-opt", "seccomp=unconfined", "busybox").stdout.decode().strip()
    assert json.loads(servin.docker("inspect", cid).stdout)[0]["HostConfig"]["SecurityOpt"] == ["seccomp=unconfined"]
    servin.docker("rm", cid)


def test_custom_profile_file(servin: ServinDaemon, tmp_path: Path) -> None:
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps(MKDIR, indent=2))
    res = servin.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox", "mkdir", "/x", check=False)
    assert res.returncode == 1
    assert b"Operation not permitted" in res.stderr
    assert servin.docker("run", "--rm", "--security-opt", f"seccomp={profile}", "busybox",
                         "unshare", "-U", "true").returncode == 0  # only mkdir is blocked


def test_bad_profile_refused_at_create(servin: ServinDaemon, tmp_path: Path) -> None:
    profile = tmp_path / "bad.json"
    profile.write_text('{"defaultAction": "SCMP_ACT_BOGUS"}')
    before = servin.docker("ps", "-aq").stdout
    res = servin.docker("create", "--security-opt", f"seccomp={profile}", "busybox", check=False)
    assert res.returncode != 0
    assert b"Error response from daemon: string SCMP_ACT_BOGUS is not a valid action for seccomp" in res.stderr
    profile.write_text('{"defaultAction": 5}')
    res = servin.docker("create", "--security-opt", f"seccomp={profile}", "busybox", check=False)
    assert b"Decoding seccomp profile failed: json: cannot unmarshal number into Go struct field" in res.stderr
    assert servin.docker("ps", "-aq").stdout == before


def test_info_names_the_profile(servin: ServinDaemon) -> None:
    opts = json.loads(servin.docker("info", "--format", "{{json .SecurityOptions}}").stdout)
    assert "name=seccomp,profile=default" in opts


@pytest.fixture
def client(servin: ServinDaemon) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=servin.host, version="auto", timeout=60)
    yield c
    c.close()


def test_dockerpy_security_opt(client: docker.DockerClient) -> None:
    out = client.containers.run("busybox", ["grep", "Seccomp:", "/proc/self/status"],
                                security_opt=["seccomp=unconfined"], remove=True)
    assert out.split()[1] == b"0"
    out = client.containers.run("busybox", ["sh", "-c", "mkdir /x 2>&1; echo $?"], remove=True,
                                security_opt=["seccomp=" + json.dumps(MKDIR)])
    assert b"Operation not permitted" in out and out.split()[-1] == b"1"


def test_daemon_seccomp_profile(daemon: ServinDaemon, tmp_path: Path) -> None:
    d = daemon
    profile = tmp_path / "daemon-profile.json"
    profile.write_text(json.dumps(MKDIR))
    d.stop()
    d.config_file.write_text(json.dumps({"seccomp-profile": str(profile)}))
    d.start()
    res = d.docker("run", "--rm", "busybox", "mkdir", "/x", check=False)
    assert res.returncode == 1 and b"Operation not permitted" in res.stderr
    assert d.docker("run", "--rm", "--security-opt", "seccomp=builtin", "busybox", "mkdir", "/x").returncode == 0
    info = json.loads(d.docker("info", "--format", "{{json .}}").stdout)
    assert f"name=seccomp,profile={profile}" in info["SecurityOptions"]
    assert "WARNING: daemon is not using the default seccomp profile" in info["Warnings"]
    d.stop()
    d.config_file.write_text(json.dumps({"seccomp-profile": "unconfined"}))
    d.start()
    assert seccomp_mode(d) == "0"
    assert "name=seccomp,profile=unconfined" in json.loads(
        d.docker("info", "--format", "{{json .SecurityOptions}}").stdout)
