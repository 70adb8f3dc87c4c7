"""The container-config work of API 1.42 to 1.48 through the docker CLI 28.2 (which negotiates up to
1.50) and docker-py pinned to a version, against a daemon whose window reaches 1.55 (the tests start it
with the version table's maximum raised, as the lead's merge will): recursive read-only binds, volume
subpaths, tmpfs options, image mounts, console size, annotations, the healthcheck's start interval,
`docker stop -s`, `docker volume prune [-a]`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from tests.support.daemon import ServinDaemon, load_busybox

WRITE = ("touch /m/top 2>/dev/null && echo top-rw || echo top-ro;"
         " touch /m/sub/x 2>/dev/null && echo sub-rw || echo sub-ro")
WINDOW_1_55 = ("import sys, runpy, servin.api.wire.versions as v; v.MAX_VERSION = (1, 55); "
               "sys.argv[0] = 'servin'; runpy.run_module('servin.cli.main', run_name='__main__')")


class Daemon155(ServinDaemon):
    def command(self, *hosts: str) -> list[str]:
        cmd = super().command(*hosts)
        assert cmd[1:3] == ["-m", "servin.cli.main"]
        return [cmd[0], "-c", WINDOW_1_55, *cmd[3:]]


@pytest.fixture(scope="module")
def d() -> Iterator[ServinDaemon]:
    daemon = Daemon155()
    try:
        daemon.start()
        load_busybox(daemon)
        yield daemon
    finally:
        daemon.cleanup()


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def api(d: ServinDaemon, version: str) -> docker.APIClient:
    return docker.APIClient(base_url=d.host, version=version)


@pytest.fixture
def with_submount(tmp_path: Path) -> Iterator[Path]:
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(src / "sub")], check=True)
    try:
        yield src
    finally:
        subprocess.run(["umount", "-l", str(src / "sub")], check=False)


def test_the_cli_speaks_1_50(d: ServinDaemon) -> None:
    assert json.loads(out(d, "version", "--format", "{{json .}}"))["Client"]["ApiVersion"] == "1.50"


def test_read_only_binds_are_recursively_read_only(d: ServinDaemon, with_submount: Path) -> None:
    src = with_submount
    assert out(d, "run", "--rm", "-v", f"{src}:/m:ro", "busybox", "sh", "-c", WRITE) == "top-ro\nsub-ro\n"
    assert out(d, "run", "--rm", "--mount", f"type=bind,src={src},dst=/m,readonly", "busybox", "sh", "-c",
               WRITE) == "top-ro\nsub-ro\n"
    assert out(d, "run", "--rm", "--mount", f"type=bind,src={src},dst=/m,readonly,bind-recursive=writable",
               "busybox", "sh", "-c", WRITE) == "top-ro\nsub-rw\n"
    assert out(d, "run", "--rm", "--mount",
               f"type=bind,src={src},dst=/m,readonly,bind-recursive=readonly,bind-propagation=rprivate",
               "busybox", "sh", "-c", WRITE) == "top-ro\nsub-ro\n"
    # a 1.41 client keeps the old read-only binds
    old = {**d.env, "DOCKER_API_VERSION": "1.41"}
    res = subprocess.run(["docker", "run", "--rm", "-v", f"{src}:/m:ro", "busybox", "sh", "-c", WRITE], env=old,
                         capture_output=True, timeout=60, check=True)
    assert res.stdout == b"top-ro\nsub-rw\n"
    res = d.docker("run", "--rm", "-v", f"{src}:/m:rro", "busybox", "true", check=False)
    assert res.returncode == 125 and b"invalid mode: rro" in res.stderr


def test_bind_options_are_echoed(d: ServinDaemon, tmp_path: Path) -> None:
    cid = out(d, "create", "--mount",
              f"type=bind,src={tmp_path},dst=/m,readonly,bind-recursive=readonly,bind-propagation=rprivate",
              "busybox", "true").strip()
    try:
        info = json.loads(out(d, "inspect", cid))[0]
        assert info["HostConfig"]["Mounts"] == [{"Type": "bind", "Source": str(tmp_path), "Target": "/m",
                                                 "ReadOnly": True, "BindOptions": {"Propagation": "rprivate",
                                                                                  "ReadOnlyForceRecursive": True}}]
        assert [(m["Destination"], m["RW"]) for m in info["Mounts"]] == [("/m", False)]
    finally:
        d.docker("rm", cid)


def test_create_mountpoint_through_docker_py(d: ServinDaemon, tmp_path: Path) -> None:
    src = tmp_path / "made"
    client = api(d, "1.42")
    hc = client.create_host_config(mounts=[{"Type": "bind", "Source": str(src), "Target": "/m",
                                            "BindOptions": {"CreateMountpoint": True}}])
    with pytest.raises(docker.errors.APIError, match="bind source path does not exist"):
        api(d, "1.41").create_container("busybox", ["true"], host_config=hc)
    cid = client.create_container("busybox", ["true"], host_config=hc)["Id"]
    client.remove_container(cid)
    assert src.is_dir()


def test_volume_subpath(d: ServinDaemon) -> None:
    try:
        d.docker("run", "--rm", "-v", "subvol:/d", "busybox", "sh", "-c",
                 "mkdir -p /d/sub && echo inside > /d/sub/f && ln -s /etc /d/esc")
        assert out(d, "run", "--rm", "--mount", "type=volume,src=subvol,dst=/d,volume-subpath=sub", "busybox",
                   "cat", "/d/f") == "inside\n"
        # a link in the volume that leads out of it is refused, in dockerd's (safepath's) words
        res = d.docker("run", "--rm", "--mount", "type=volume,src=subvol,dst=/d,volume-subpath=esc", "busybox",
                       "ls", "/d", check=False)
        assert res.returncode != 0 and b"path concatenation escapes the base directory" in res.stderr
        assert b"subpath: esc" in res.stderr
        res = d.docker("run", "--rm", "--mount", "type=volume,src=subvol,dst=/d,volume-subpath=../x", "busybox",
                       "true", check=False)
        assert b"subpath must be a relative path within the volume" in res.stderr
        old = {**d.env, "DOCKER_API_VERSION": "1.44"}
        res = subprocess.run(["docker", "run", "--rm", "--mount", "type=volume,src=subvol,dst=/d,volume-subpath=sub",
                              "busybox", "true"], env=old, capture_output=True, timeout=60)
        assert b"VolumeOptions.Subpath needs API v1.45 or newer" in res.stderr
    finally:
        d.docker("volume", "rm", "-f", "subvol", check=False)


def test_tmpfs_options_through_docker_py(d: ServinDaemon) -> None:
    client = api(d, "1.46")
    script = "echo 'echo ran' > /t/s && chmod +x /t/s && /t/s"

    def run(options: list[list[str]] | None) -> tuple[int, bytes]:
        tmpfs: dict = {"SizeBytes": 1 << 20, **({"Options": options} if options else {})}
        hc = client.create_host_config(mounts=[{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": tmpfs}])
        cid = client.create_container("busybox", ["sh", "-c", script], host_config=hc)["Id"]
        try:
            client.start(cid)
            code = client.wait(cid, timeout=30)["StatusCode"]
            return code, client.logs(cid)
        finally:
            client.remove_container(cid, force=True)

    assert run([["exec"]]) == (0, b"ran\n")
    assert run(None)[0] != 0  # tmpfs is noexec by default
    with pytest.raises(docker.errors.APIError, match="invalid option: uid"):
        run([["noexec"], ["uid", "1000"]])


def test_image_mount(d: ServinDaemon) -> None:
    listing = out(d, "run", "--rm", "--mount", "type=image,source=busybox,target=/img,image-subpath=bin",
                  "busybox", "ls", "/img").split()
    assert "busybox" in listing and "sh" in listing
    res = d.docker("run", "--rm", "--mount", "type=image,source=busybox,target=/img", "busybox", "touch", "/img/x",
                   check=False)
    assert res.returncode != 0 and b"Read-only file system" in res.stderr
    base = out(d, "run", "-d", "busybox", "sh", "-c", "mkdir /extra && echo layered > /extra/f").strip()
    d.docker("wait", base)
    image = out(d, "commit", base, "mounted:1").strip()  # two layers: an overlay of them
    user = out(d, "create", "--mount", "type=image,source=mounted:1,target=/img", "busybox", "true").strip()
    try:
        assert out(d, "run", "--rm", "--mount", "type=image,source=mounted:1,target=/img,image-subpath=extra",
                   "busybox", "cat", "/img/f") == "layered\n"
        text = out(d, "run", "--rm", "--mount", "type=image,source=mounted:1,target=/img", "busybox", "sh", "-c",
                   "cat /img/extra/f; ls /img/bin | grep -c busybox; touch /img/x 2>&1 || true")
        assert text.startswith("layered\n1\n") and "Read-only file system" in text
        res = d.docker("rmi", "mounted:1", check=False)
        assert res.returncode != 0 and f"container {user[:12]} is using its referenced image".encode() in res.stderr
    finally:
        d.docker("rm", user, base)
        d.docker("rmi", image)


def test_console_size_through_docker_py(d: ServinDaemon) -> None:
    def size(version: str) -> bytes:
        client = api(d, version)
        hc = client.create_host_config()
        hc["ConsoleSize"] = [30, 100]
        cid = client.create_container("busybox", ["stty", "size"], tty=True, host_config=hc)["Id"]
        try:
            client.start(cid)
            client.wait(cid, timeout=30)
            return client.logs(cid).strip()
        finally:
            client.remove_container(cid, force=True)

    assert size("1.42") == b"30 100"
    assert size("1.41") != b"30 100"  # ConsoleSize is not read below 1.42: the pty has no size


def test_annotations_through_docker_py(d: ServinDaemon) -> None:
    client = api(d, "1.46")
    hc = client.create_host_config()
    hc["Annotations"] = {"com.example.a": "b"}
    cid = client.create_container("busybox", ["true"], host_config=hc)["Id"]
    try:
        assert client.inspect_container(cid)["HostConfig"]["Annotations"] == {"com.example.a": "b"}
        summary = next(c for c in client.containers(all=True) if c["Id"] == cid)
        assert summary["HostConfig"]["Annotations"] == {"com.example.a": "b"}
        old = api(d, "1.42").create_container("busybox", ["true"], host_config=hc)["Id"]
        assert "Annotations" not in client.inspect_container(old)["HostConfig"]
        client.remove_container(old)
    finally:
        client.remove_container(cid)


def test_health_start_interval(d: ServinDaemon) -> None:
    cid = out(d, "run", "-d", "--health-cmd", "true", "--health-interval", "1h", "--health-start-period", "1m",
              "--health-start-interval", "1s", "busybox", "sleep", "60").strip()
    try:
        deadline = time.monotonic() + 4  # the start interval (1s), not the interval (1h) nor the default 5s
        while time.monotonic() < deadline:
            if out(d, "inspect", "-f", "{{.State.Health.Status}}", cid).strip() == "healthy":
                break
            time.sleep(0.2)
        else:
            raise AssertionError("not healthy within the start interval")
        cfg = json.loads(out(d, "inspect", cid))[0]["Config"]["Healthcheck"]
        assert cfg["StartInterval"] == 1_000_000_000
    finally:
        d.docker("rm", "-f", cid)


def test_stop_with_a_signal(d: ServinDaemon) -> None:
    cid = out(d, "run", "-d", "busybox", "sh", "-c", "trap '' TERM; sleep 60").strip()
    try:
        started = time.monotonic()
        d.docker("stop", "-s", "KILL", "-t", "30", cid)
        assert time.monotonic() - started < 10
        assert out(d, "inspect", "-f", "{{.State.ExitCode}}", cid).strip() == "137"
    finally:
        d.docker("rm", "-f", cid)


def test_volume_prune_anonymous_unless_all(d: ServinDaemon) -> None:
    d.docker("volume", "create", "keepme")
    anon = out(d, "volume", "create").strip()
    try:
        pruned = out(d, "volume", "prune", "-f")
        assert anon in pruned and "keepme" not in pruned
        assert "keepme" in out(d, "volume", "prune", "-a", "-f")
        d.docker("volume", "create", "old")
        assert "old" in (api(d, "1.41").prune_volumes()["VolumesDeleted"] or [])  # below 1.42: all=true
    finally:
        d.docker("volume", "rm", "-f", "keepme", anon, "old", check=False)
