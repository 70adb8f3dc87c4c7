"""Volumes and mounts through the docker CLI and docker-py."""

from __future__ import annotations

import json
import resource
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def test_named_volume_persists_and_is_shared(servin: ServinDaemon) -> None:
    d = servin
    d.docker("volume", "create", "--label", "team=a", "shared1")
    try:
        d.docker("run", "--rm", "-v", "shared1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
        assert out(d, "run", "--rm", "-v", "shared1:/data:ro", "busybox", "cat", "/data/f") == "kept\n"
        res = d.docker("run", "--rm", "-v", "shared1:/data:ro", "busybox", "touch", "/data/x", check=False)
        assert b"Read-only file system" in res.stderr
        vol = json.loads(out(d, "volume", "inspect", "shared1"))[0]
        assert vol["Labels"] == {"team": "a"} and vol["Driver"] == "local" and vol["Scope"] == "local"
        assert "shared1" in out(d, "volume", "ls", "-q", "--filter", "label=team=a").split()
        cid = out(d, "create", "-v", "shared1:/data", "busybox", "true").strip()
        res = d.docker("volume", "rm", "shared1", check=False)
        assert res.returncode != 0 and b"volume is in use" in res.stderr
        mounts = json.loads(out(d, "inspect", cid))[0]["Mounts"]
        assert mounts == [{"Type": "volume", "Name": "shared1", "Source": vol["Mountpoint"],
                           "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True,
                           "Propagation": ""}]
        d.docker("rm", cid)
    finally:
        d.docker("volume", "rm", "-f", "shared1", check=False)
    assert d.docker("volume", "inspect", "shared1", check=False).returncode != 0


def test_new_volume_gets_the_image_content_unless_nocopy(servin: ServinDaemon) -> None:
    d = servin
    try:
        listing = out(d, "run", "--rm", "-v", "etccopy:/etc", "busybox", "ls", "/etc").split()
        assert "passwd" in listing and "group" in listing and "hosts" in listing
        empty = out(d, "run", "--rm", "-v", "etcempty:/etc:nocopy", "busybox", "ls", "/etc").split()
        assert "passwd" not in empty
    finally:
        d.docker("volume", "rm", "-f", "etccopy", "etcempty", check=False)


def test_bind_mounts_and_mount_flag(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    (tmp_path / "in.txt").write_text("from host\n")
    assert out(d, "run", "--rm", "-v", f"{tmp_path}:/h", "busybox", "cat", "/h/in.txt") == "from host\n"
    d.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/h", "busybox", "sh", "-c",
             "echo back > /h/out.txt")
    assert (tmp_path / "out.txt").read_text() == "back\n"
    res = d.docker("run", "--rm", "--mount", f"type=bind,src={tmp_path},dst=/h,readonly", "busybox",
                   "touch", "/h/x", check=False)
    assert b"Read-only file system" in res.stderr
    res = d.docker("run", "--rm", "--mount", "type=bind,src=/nonexistent-dir-xyz,dst=/h", "busybox", "true",
                   check=False)
    assert b"bind source path does not exist: /nonexistent-dir-xyz" in res.stderr
    created = tmp_path / "made-by-v"
    d.docker("run", "--rm", "-v", f"{created}:/m", "busybox", "true")
    assert created.is_dir()  # -v creates a missing host directory, as Docker does


def test_tmpfs_readonly_rootfs_ulimits(servin: ServinDaemon) -> None:
    d = servin
    text = out(d, "run", "--rm", "--read-only", "--tmpfs", "/run:size=1m", "--mount", "type=tmpfs,dst=/scratch",
               "--ulimit", "nofile=100:200", "busybox", "sh", "-c",
               "touch /run/ok && echo run-ok; touch /scratch/ok && echo scratch-ok; touch /x 2>&1; "
               "grep ' /run ' /proc/mounts; ulimit -n; ulimit -Hn")
    assert "run-ok" in text and "scratch-ok" in text and "Read-only file system" in text
    assert "size=1024k" in text and "noexec" in text
    assert text.split()[-2:] == ["100", "200"]


def test_a_ulimit_above_the_daemons_hard_limit_fails_the_start(servin: ServinDaemon) -> None:
    """Without CAP_SYS_RESOURCE the kernel refuses it: the start fails as with runc, never a lower
    limit than the one asked for."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no finite hard limit for open files here")
    res = servin.docker("run", "--rm", "--ulimit", f"nofile={hard + 1000}:{hard + 1000}", "busybox", "true",
                        check=False)
    assert res.returncode != 0
    assert b"error setting rlimit type 7: operation not permitted" in res.stderr


def test_anonymous_volumes_and_rm_v(servin: ServinDaemon) -> None:
    d = servin
    before = set(out(d, "volume", "ls", "-q").split())
    cid = out(d, "create", "-v", "/anon", "busybox", "true").strip()
    mounts = json.loads(out(d, "inspect", cid))[0]["Mounts"]
    assert len(mounts) == 1 and mounts[0]["Destination"] == "/anon" and len(mounts[0]["Name"]) == 64
    assert set(out(d, "volume", "ls", "-q").split()) - before == {mounts[0]["Name"]}
    d.docker("rm", "-v", cid)
    assert set(out(d, "volume", "ls", "-q").split()) == before
    d.docker("run", "--rm", "-v", "/anon2", "busybox", "true")  # --rm removes anonymous volumes too
    assert set(out(d, "volume", "ls", "-q").split()) == before


def test_volumes_from(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "--name", "datasrc", "-v", "vfrom:/data", "busybox", "sh", "-c", "echo src > /data/f")
    try:
        assert out(d, "run", "--rm", "--volumes-from", "datasrc", "busybox", "cat", "/data/f") == "src\n"
        res = d.docker("run", "--rm", "--volumes-from", "datasrc:ro", "busybox", "touch", "/data/g", check=False)
        assert b"Read-only file system" in res.stderr
    finally:
        d.docker("rm", "-f", "datasrc")
        d.docker("volume", "rm", "vfrom")


def test_volume_api_with_docker_py(servin: ServinDaemon) -> None:
    client = docker.DockerClient(base_url=servin.host, version="auto")
    try:
        vol = client.volumes.create("pyvol", labels={"k": "v"})
        assert vol.attrs["Labels"] == {"k": "v"}
        assert "pyvol" in [v.name for v in client.volumes.list(filters={"label": "k=v"})]
        tmpfs = client.volumes.create("tmpfsvol", driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=2m"})
        text = client.containers.run("busybox", "grep ' /t ' /proc/mounts", remove=True,
                                     volumes={"tmpfsvol": {"bind": "/t", "mode": "rw"}})
        assert b"tmpfs /t tmpfs" in text and b"size=2048k" in text
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("no-such-volume")
        kept = client.volumes.prune()["VolumesDeleted"] or []  # API 1.42 on: anonymous volumes only
        assert "pyvol" not in kept and "tmpfsvol" not in kept
        result = client.volumes.prune(filters={"all": True})  # `docker volume prune -a`: named ones too
        assert "pyvol" in result["VolumesDeleted"] and "tmpfsvol" in result["VolumesDeleted"]
        del tmpfs
    finally:
        for name in ("pyvol", "tmpfsvol"):
            try:
                client.volumes.get(name).remove(force=True)
            except docker.errors.NotFound:
                pass
        client.close()


def test_system_df_reports_real_sizes(servin: ServinDaemon) -> None:
    d = servin
    d.docker("run", "--name", "dfwriter", "-v", "dfvol:/d", "busybox", "sh", "-c",
             "head -c 300000 /dev/zero > /big; head -c 200000 /dev/zero > /d/x")
    try:
        client = docker.DockerClient(base_url=d.host, version="auto")
        df = client.df()
        client.close()
        row = next(c for c in df["Containers"] if c["Names"] == ["/dfwriter"])
        assert 300_000 <= row["SizeRw"] < 400_000
        vol = next(v for v in df["Volumes"] if v["Name"] == "dfvol")
        assert vol["UsageData"] == {"Size": 200_000, "RefCount": 1}
        img = next(i for i in df["Images"] if "busybox:latest" in i["RepoTags"])
        assert img["Containers"] >= 1 and img["Size"] > 1_000_000
        assert df["LayersSize"] >= img["Size"] and df["BuildCache"] == []
    finally:
        d.docker("rm", "-f", "dfwriter")
        d.docker("volume", "rm", "dfvol")
