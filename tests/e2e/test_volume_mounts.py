"""Local volumes that are mounts (`docker volume create -o type=... -o device=... -o o=...`) with
`--mount ...,volume-subpath=` (API 1.45) through the docker CLI 28.2 and docker-py, as dockerd: the
volume mounted on its _data while containers use it (shared by them), the subpath resolved inside
it with dockerd's errors, nothing left mounted when the last user is gone, after a removal or a
daemon killed mid-way."""

from __future__ import annotations

import json
import time
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


def mounted_at(path: Path) -> list[str]:
    """The mount points of this namespace at `path` or below it."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def volume_mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if "/volumes/" in line.split()[4]]


def data_dir(d: ServinDaemon, name: str) -> Path:
    return Path(json.loads(out(d, "volume", "inspect", name))[0]["Mountpoint"])


def wait_for(cond, what: str, timeout: float = 10) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def subpath_run(d: ServinDaemon, vol: str, sub: str, *cmd: str, check: bool = True):  # noqa: ANN201
    return d.docker("run", "--rm", "--mount", f"type=volume,src={vol},dst=/d,volume-subpath={sub}", "busybox",
                    *cmd, check=check)


def test_tmpfs_volume_subpath_is_shared_while_used(servin: ServinDaemon) -> None:
    d = servin
    d.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=10m", "tv")
    data = data_dir(d, "tv")
    try:
        d.docker("run", "-d", "--name", "holder", "-v", "tv:/v", "busybox", "sh", "-c",
                 "mkdir -p /v/sub/deep && echo shared > /v/sub/f && ln -s /etc /v/esc && touch /v/file "
                 "&& sleep 300")
        wait_for(lambda: (data / "sub" / "f").exists(), "the holder's file on the volume's tmpfs")
        assert mounted_at(data) == [str(data)]
        assert subpath_run(d, "tv", "sub", "cat", "/d/f").stdout == b"shared\n"
        assert subpath_run(d, "tv", "sub", "sh", "-c", "grep ' /d ' /proc/mounts").stdout.startswith(
            b"tmpfs /d tmpfs rw")
        assert subpath_run(d, "tv", "file", "sh", "-c", "test -f /d && echo file").stdout == b"file\n"
        res = subpath_run(d, "tv", "nope/x", "true", check=False)
        assert res.returncode == 127  # the CLI's code for "no such file or directory", as with dockerd
        assert (f"Error response from daemon: cannot access path {data}/nope/x: lstat {data}/nope: "
                "no such file or directory").encode() in res.stderr
        res = subpath_run(d, "tv", "esc", "true", check=False)
        assert res.returncode == 125
        assert (f"Error response from daemon: path concatenation escapes the base directory, base: {data}, "
                "subpath: esc").encode() in res.stderr
        # what inspect shows: the volume as any other (Source its _data), the subpath in HostConfig.Mounts
        cid = out(d, "create", "--mount", "type=volume,src=tv,dst=/d,volume-subpath=sub/deep", "busybox",
                  "true").strip()
        info = json.loads(out(d, "inspect", cid))[0]
        d.docker("rm", cid)
        assert info["HostConfig"]["Mounts"] == [{"Type": "volume", "Source": "tv", "Target": "/d",
                                                 "VolumeOptions": {"Subpath": "sub/deep"}}]
        [mp] = info["Mounts"]
        assert (mp["Type"], mp["Name"], mp["Source"], mp["Destination"], mp["Driver"], mp["RW"]) == (
            "volume", "tv", str(data), "/d", "local", True)
        assert mounted_at(data) == [str(data)]  # the holder still uses it
        d.docker("rm", "-f", "holder")
        wait_for(lambda: not mounted_at(data), "the volume unmounted with its last user")
        # nothing holds it: a new user mounts a new tmpfs, where the subpath is missing
        res = subpath_run(d, "tv", "sub", "true", check=False)
        assert res.returncode == 127 and b"cannot access path" in res.stderr
        assert not mounted_at(data)
    finally:
        d.docker("rm", "-f", "holder", check=False)
        d.docker("volume", "rm", "-f", "tv", check=False)
    assert not mounted_at(data)


def test_bind_volume_subpath_through_docker_py(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "f").write_text("from the host\n")
    (tmp_path / "up").symlink_to("..")
    client = docker.DockerClient(base_url=d.host, version="auto")
    try:
        client.volumes.create("bv", driver_opts={"type": "none", "o": "bind", "device": str(tmp_path)})
        data = data_dir(d, "bv")
        hc = client.api.create_host_config(mounts=[{"Type": "volume", "Source": "bv", "Target": "/d",
                                                    "VolumeOptions": {"Subpath": "sub"}}])
        cid = client.api.create_container("busybox", ["sh", "-c", "cat /d/f; echo more > /d/g"],
                                          host_config=hc)["Id"]
        client.api.start(cid)
        assert client.api.wait(cid)["StatusCode"] == 0
        assert client.api.logs(cid) == b"from the host\n"
        assert (tmp_path / "sub" / "g").read_text() == "more\n"
        assert not mounted_at(data)  # the container exited: its only user
        client.api.remove_container(cid)
        hc = client.api.create_host_config(mounts=[{"Type": "volume", "Source": "bv", "Target": "/d",
                                                    "VolumeOptions": {"Subpath": "up"}}])
        cid = client.api.create_container("busybox", ["true"], host_config=hc)["Id"]
        with pytest.raises(docker.errors.APIError) as ei:
            client.api.start(cid)
        assert ei.value.status_code == 400
        assert ei.value.explanation == f"path concatenation escapes the base directory, base: {data}, subpath: up"
        client.api.remove_container(cid)
        assert not mounted_at(data)
        pinned = docker.APIClient(base_url=d.host, version="1.44")
        with pytest.raises(docker.errors.APIError, match="VolumeOptions.Subpath needs API v1.45 or newer"):
            pinned.create_container("busybox", ["true"], host_config=hc)
        pinned.close()
    finally:
        try:
            client.volumes.get("bv").remove(force=True)
        except docker.errors.NotFound:
            pass
        client.close()


def test_a_killed_daemon_leaves_nothing_mounted_outside_its_root(daemon: ServinDaemon) -> None:
    d = daemon
    before = set(volume_mounts())
    d.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "kv")
    data = data_dir(d, "kv")
    d.docker("run", "-d", "--name", "keeper", "-v", "kv:/v", "busybox", "sh", "-c",
             "mkdir /v/sub && echo kept > /v/sub/f && sleep 300")
    wait_for(lambda: (data / "sub" / "f").exists(), "the keeper's file")
    d.kill9()
    assert [p for p in set(volume_mounts()) - before if not p.startswith(f"{d.data_root}/")] == []
    d.start()  # the leftover mount is replaced by one for the container still running
    assert mounted_at(data) == [str(data)]
    assert out(d, "exec", "keeper", "cat", "/v/sub/f") == "kept\n"  # its own bind survived
    d.docker("rm", "-f", "keeper")
    wait_for(lambda: not mounted_at(data), "the volume unmounted with its last user")
    d.docker("volume", "rm", "kv")
    assert set(volume_mounts()) - before == set()


def test_a_subpath_gets_no_copy_of_the_image(servin: ServinDaemon) -> None:
    d = servin
    try:
        d.docker("run", "--rm", "-v", "cv:/made", "busybox", "mkdir", "/made/sub")
        assert subpath_run(d, "cv", "sub", "ls", "-A", "/d").stdout == b""
        # the image's /var (spool, www) is copied into a new volume, never into a subpath (as dockerd)
        res = d.docker("run", "--rm", "--mount", "type=volume,src=cv,dst=/var,volume-subpath=sub", "busybox",
                       "ls", "-A", "/var")
        assert res.stdout == b""
        assert sorted(p.name for p in data_dir(d, "cv").iterdir()) == ["sub"]
        assert out(d, "run", "--rm", "-v", "fresh:/var", "busybox", "ls", "/var").split() == ["spool", "www"]
        d.docker("volume", "rm", "fresh")
    finally:
        d.docker("volume", "rm", "-f", "cv", check=False)
