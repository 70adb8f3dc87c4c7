"""Through the docker CLI 28.2 (and docker-py), as dockerd: volumes get the image's files at create,
volumes that are mounts too (mounted for the copy, unmounted after it: a tmpfs keeps nothing);
docker cp of a stopped container sees its volumes that are mounts; image mount subpaths get
dockerd's errors before the container starts; local volume options are checked with dockerd's
wording."""

from __future__ import annotations

import io
import re
import tarfile
import uuid
from pathlib import Path

import docker
import pytest

from tests.e2e.test_volume_mounts import data_dir, mounted_at, volume_mounts
from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str) -> str:
    return d.docker(*args).stdout.decode()


def test_a_bind_volume_gets_the_images_files_at_create(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    before = set(volume_mounts())
    d.docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={tmp_path}", "bv")
    cid = ""
    try:
        cid = out(d, "create", "-v", "bv:/etc", "busybox", "cat", "/etc/group").strip()
        assert (tmp_path / "passwd").is_file() and (tmp_path / "group").is_file()  # before any start
        assert set(volume_mounts()) == before  # mounted for the copy only
        (tmp_path / "group").write_text("from the host\n")
        d.docker("start", "-a", cid)
        assert out(d, "logs", cid) == "from the host\n"
        d.docker("rm", cid)
        cid = out(d, "create", "--mount", "type=volume,src=bv,dst=/bin,volume-nocopy", "busybox").strip()
        assert not (tmp_path / "busybox").exists()
    finally:
        if cid:
            d.docker("rm", "-f", cid, check=False)
        d.docker("volume", "rm", "-f", "bv", check=False)
    assert set(volume_mounts()) == before


def test_a_tmpfs_volume_loses_its_copy_as_on_dockerd(servin: ServinDaemon) -> None:
    d = servin
    d.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "tv2")
    data = data_dir(d, "tv2")
    try:
        # copied into a tmpfs mounted for the copy, gone with it: the container's tmpfs is a new one
        assert out(d, "run", "--rm", "-v", "tv2:/var", "busybox", "ls", "-A", "/var") == ""
        assert not mounted_at(data)
    finally:
        d.docker("volume", "rm", "-f", "tv2", check=False)


def test_a_volume_that_cannot_mount_fails_the_create(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    gone = tmp_path / "gone"
    d.docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={gone}", "broken")
    data = data_dir(d, "broken")
    try:
        res = d.docker("create", "--name", "nope", "-v", "broken:/etc", "busybox", check=False)
        assert res.returncode == 1
        assert (f"Error response from daemon: failed to populate volume: error while mounting volume '{data}': "
                f"failed to mount local volume: mount {gone}:{data}, flags: 0x1000: no such file or directory"
                ).encode() in res.stderr
        assert out(d, "ps", "-aq", "--filter", "name=nope") == ""
        # nothing of the image at the destination: no copy, no mount at create; the start tells
        cid = out(d, "create", "-v", "broken:/nosuch", "busybox", "true").strip()
        res = d.docker("start", cid, check=False)
        assert res.returncode != 0 and b"failed to mount local volume" in res.stderr
        d.docker("rm", cid)
        res = d.docker("run", "--rm", "--mount", "type=volume,src=nodev,dst=/x,volume-opt=type=tmpfs,"
                       "volume-opt=device=", "busybox", "true", check=False)
        assert b"missing device in volume options" in res.stderr
    finally:
        d.docker("volume", "rm", "-f", "broken", "nodev", check=False)
    assert not mounted_at(data)


def test_cp_of_a_stopped_container_sees_its_mount_volumes(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    before = set(volume_mounts())
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("on the device\n")
    d.docker("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", f"device={src}", "cpv")
    d.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "cpt")
    name = "cp-" + uuid.uuid4().hex[:6]
    try:
        d.docker("create", "--name", name, "-v", "cpv:/data", "-v", "cpt:/scratch", "busybox", "true")
        assert set(volume_mounts()) == before
        d.docker("cp", f"{name}:/data/f", str(tmp_path / "got"))
        assert (tmp_path / "got").read_text() == "on the device\n"
        (tmp_path / "in").write_text("copied in\n")
        d.docker("cp", str(tmp_path / "in"), f"{name}:/data/in")
        assert (src / "in").read_text() == "copied in\n"  # written to the volume's device
        d.docker("cp", str(tmp_path / "in"), f"{name}:/scratch/in")  # a tmpfs mounted for the copy only
        data = d.docker("cp", f"{name}:/scratch", "-").stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            assert [m.name for m in tf.getmembers()] == ["scratch"]
        assert set(volume_mounts()) == before
        res = d.docker("export", name)  # volumes are not the container's filesystem
        with tarfile.open(fileobj=io.BytesIO(res.stdout)) as tf:
            names = set(tf.getnames())
        assert "data/" in names or "data" in names
        assert not any(n.startswith("data/") and n != "data/" for n in names)
        assert set(volume_mounts()) == before
    finally:
        d.docker("rm", "-f", name, check=False)
        d.docker("volume", "rm", "-f", "cpv", "cpt", check=False)
    assert set(volume_mounts()) == before


def test_image_subpath_errors_before_start(servin: ServinDaemon) -> None:
    d = servin
    base = out(d, "run", "-d", "busybox", "sh", "-c",
               "mkdir /extra && echo in > /extra/f && ln -s /etc /hostetc && ln -s ../../../.. /up "
               "&& ln -s extra /inside").strip()
    d.docker("wait", base)
    d.docker("commit", base, "subpaths:1")
    try:
        def run(image: str, sub: str, *cmd: str, check: bool = False):  # noqa: ANN202
            return d.docker("run", "--rm", "--mount", f"type=image,src={image},dst=/img,image-subpath={sub}",
                            "busybox", *cmd, check=check)

        assert run("subpaths:1", "inside", "cat", "/img/f", check=True).stdout == b"in\n"
        for image in ("busybox", "subpaths:1"):  # one layer; two layers
            res = run(image, "nosuch/x", "true")
            assert res.returncode == 127, res.stderr
            assert re.search(rb"Error response from daemon: cannot access path (/\S+)/nosuch/x: "
                             rb"lstat \1/nosuch: no such file or directory", res.stderr), res.stderr
        for sub in ("hostetc", "up"):
            res = run("subpaths:1", sub, "true")
            assert res.returncode == 125
            assert re.search(rb"Error response from daemon: path concatenation escapes the base directory, "
                             rb"base: /\S+, subpath: " + sub.encode(), res.stderr), res.stderr
        assert not mounted_at(Path(d.data_root))
    finally:
        d.docker("rm", "-f", base, check=False)
        d.docker("rmi", "subpaths:1", check=False)


@pytest.mark.parametrize(("opts", "message"), [
    (["-o", "foo=bar"], 'create {name}: invalid option: "foo"'),
    (["-o", "device=/x"], 'create {name}: missing required option: "type"'),
    (["-o", "size=10m"], "create {name}: quota size requested but no quota support"),
])
def test_volume_create_options_as_dockerd(servin: ServinDaemon, opts: list[str], message: str) -> None:
    name = "opt-" + uuid.uuid4().hex[:6]
    res = servin.docker("volume", "create", *opts, name, check=False)
    assert res.returncode == 1
    assert res.stderr.decode().strip() == f"Error response from daemon: {message.format(name=name)}"
    client = docker.DockerClient(base_url=servin.host, version="auto")
    try:
        with pytest.raises(docker.errors.APIError) as ei:
            client.volumes.create(name, driver_opts=dict(o.split("=", 1) for o in opts[1::2]))
        assert ei.value.status_code == 400 and ei.value.explanation == message.format(name=name)
    finally:
        client.close()


def test_cp_of_a_stopped_container_sees_its_volume_subpaths(servin: ServinDaemon) -> None:
    d = servin
    name = "cps-" + uuid.uuid4().hex[:6]
    try:
        d.docker("run", "--rm", "-v", "spv:/v", "busybox", "sh", "-c", "mkdir /v/sub && echo deep > /v/sub/f")
        d.docker("create", "--name", name, "--mount", "type=volume,src=spv,dst=/d,volume-subpath=sub",
                 "busybox", "true")
        data = d.docker("cp", f"{name}:/d/f", "-").stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            f = tf.extractfile("f")
            assert f is not None and f.read() == b"deep\n"
        d.docker("cp", "-", f"{name}:/d", input=_tar("in", b"copied\n"))
        assert out(d, "run", "--rm", "-v", "spv:/v", "busybox", "cat", "/v/sub/in") == "copied\n"
        d.docker("run", "--rm", "-v", "spv:/v", "busybox", "sh", "-c", "rm -r /v/sub && ln -s /etc /v/sub")
        res = d.docker("cp", f"{name}:/d/f", "-", check=False)  # dockerd's errors, as at start
        assert res.returncode == 1 and (b"Error response from daemon: path concatenation escapes the base "
                                        b"directory, base: ") in res.stderr
        d.docker("run", "--rm", "-v", "spv:/v", "busybox", "rm", "/v/sub")
        res = d.docker("cp", f"{name}:/d/f", "-", check=False)
        assert res.returncode == 1 and b"Error response from daemon: cannot access path " in res.stderr
    finally:
        d.docker("rm", "-f", name, check=False)
        d.docker("volume", "rm", "-f", "spv", check=False)


def _tar(name: str, content: bytes) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        tf.addfile(info, io.BytesIO(content))
    return buf.getvalue()
