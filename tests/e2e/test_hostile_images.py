"""Hostile images through the docker CLI: loaded, imported and pulled, then created, run, started,
restarted and copied from and into, they leave a host marker directory byte-for-byte and
mode-for-mode as it was, and what they aim at the host lands inside the container instead."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry.server import REGISTRY_BIN, Registry, running_registry
from tests.support.daemon import ServinDaemon
from tests.support.hostile import flat_tar, hostile_image, push, whiteout_image, write_docker_archive
from tests.support.marker import HostMarker

pytestmark = pytest.mark.e2e


@pytest.fixture
def marker(tmp_path: Path) -> HostMarker:
    return HostMarker(tmp_path / "host")


@pytest.fixture(scope="module")
def registry() -> Iterator[Registry]:
    if not os.path.exists(REGISTRY_BIN):
        pytest.skip("docker-registry is not installed")
    with running_registry() as reg:
        yield reg


def exercise(servin: ServinDaemon, image: str, marker: HostMarker, tmp_path: Path) -> None:
    """What a user does with an image, the marker checked after each step."""
    m = marker.path
    name = f"c-{os.urandom(4).hex()}"
    servin.docker("create", "--name", name, "-v", "/data", image, "sh", "-c",
                  "cat /etc/hosts; ls /vol/sub; cat /vol/sub/planted; pwd; "
                  f"cat {m}/secret 2>&1; ls -d /chmodme /chparent; echo touched > /vol/sub/new")
    marker.assert_unchanged()
    servin.docker("start", "-a", name)
    marker.assert_unchanged()
    out = servin.docker("logs", name).stdout.decode()
    assert "planted" in out and f"{m}/wd" in out, out
    assert "host secret" not in out, out  # the image's Volumes did not copy the host directory
    assert f"cat: can't open '{m}/secret'" in out, out
    servin.docker("restart", name)
    servin.docker("wait", name)
    marker.assert_unchanged()

    (tmp_path / "upload").write_text("uploaded\n")
    servin.docker("cp", str(tmp_path / "upload"), f"{name}:/etc/")
    servin.docker("cp", str(tmp_path / "upload"), f"{name}:/vol/sub/")
    got = servin.docker("cp", f"{name}:/etc/upload", "-").stdout
    assert b"uploaded" in got
    marker.assert_unchanged()
    # -w through a link, a named volume on a link: both inside the container
    out = servin.docker("run", "--rm", "-w", "/work", "-v", f"{name}-v:/data", image, "sh", "-c",
                        "pwd; echo in-volume > /data/x; cat /data/x").stdout.decode()
    assert out.splitlines() == [f"{m.parent}/workhost/newdir", "in-volume"]
    marker.assert_unchanged()
    servin.docker("rm", "-f", name)
    servin.docker("volume", "rm", f"{name}-v")


def test_a_loaded_hostile_image_stays_inside(servin: ServinDaemon, marker: HostMarker, tmp_path: Path) -> None:
    archive = tmp_path / "hostile.tar"
    write_docker_archive(hostile_image(marker.path), archive, "hostile:load")
    servin.docker("load", "-i", str(archive))
    marker.assert_unchanged()
    exercise(servin, "hostile:load", marker, tmp_path)


def test_an_imported_hostile_tar_stays_inside(servin: ServinDaemon, marker: HostMarker, tmp_path: Path) -> None:
    flat = tmp_path / "flat.tar"
    flat.write_bytes(flat_tar(hostile_image(marker.path)))
    servin.docker("import", str(flat), "hostile:import")
    marker.assert_unchanged()
    out = servin.docker("run", "--rm", "hostile:import", "/bin/sh", "-c",
                        "ls /vol/sub; cat /vol/sub/planted").stdout.decode()
    assert out.splitlines() == ["planted", "planted"]
    marker.assert_unchanged()


def test_a_pulled_hostile_image_stays_inside(servin: ServinDaemon, registry: Registry, marker: HostMarker,
                                            tmp_path: Path) -> None:
    push(hostile_image(marker.path), registry, "evil/image", "v1")
    ref = f"localhost:{registry.port}/evil/image:v1"
    servin.docker("pull", ref)
    marker.assert_unchanged()
    exercise(servin, ref, marker, tmp_path)


@pytest.mark.parametrize("name", ["bin/.wh.", "bin/.wh..", "bin/.wh...", ".wh.."])
def test_whiteouts_that_name_a_directory_itself_are_refused(servin: ServinDaemon, tmp_path: Path, name: str) -> None:
    archive = tmp_path / "wh.tar"
    write_docker_archive(whiteout_image(name), archive, "whiteout:bad")
    res = servin.docker("load", "-i", str(archive), check=False)
    assert res.returncode != 0
    assert "invalid" in res.stderr.decode().lower(), res.stderr
    # nothing half-made, and the base layer the image shared is whole
    layers = servin.data_root / "image" / "layers"
    assert not [p for p in layers.iterdir() if p.name.startswith(".tmp")] if layers.is_dir() else True
    assert servin.docker("run", "--rm", "busybox", "ls", "/bin/sh").stdout == b"/bin/sh\n"


def test_user_ids_out_of_range_are_refused(servin: ServinDaemon) -> None:
    for user in ("4294967295", "4294967296", "0:2147483648"):
        res = servin.docker("run", "--rm", "--user", user, "busybox", "id", check=False)
        assert res.returncode != 0, (user, res.stdout)
        assert "uids and gids must be in range 0-2147483647" in res.stderr.decode(), res.stderr
    assert servin.docker("run", "--rm", "--user", "2147483647", "busybox", "id", "-u").stdout == b"2147483647\n"


def test_the_data_root_is_closed_to_local_users(servin: ServinDaemon) -> None:
    modes = {p: stat.S_IMODE(os.stat(servin.data_root / p).st_mode)
             for p in (".", "containers", "image", "volumes")}
    assert modes == {".": 0o711, "containers": 0o710, "image": 0o700, "volumes": 0o701}
    cid = servin.docker("run", "-d", "busybox", "sleep", "30").stdout.decode().strip()
    try:
        os.chmod(servin.root, 0o755)  # the test's own temp dir: let "nobody" reach the data root
        servin.docker("volume", "create", "closed")
        for path in (servin.data_root / "image", servin.data_root / "containers" / cid,
                     servin.data_root / "volumes" / "closed" / "_data"):
            res = subprocess.run(["ls", str(path)], user=65534, group=65534, extra_groups=[],
                                 capture_output=True)
            assert res.returncode != 0 and b"Permission denied" in res.stderr, (path, res)
    finally:
        os.chmod(servin.root, 0o700)
        servin.docker("rm", "-f", cid)
        servin.docker("volume", "rm", "-f", "closed")


def test_names_with_a_trailing_newline_are_refused(servin: ServinDaemon) -> None:
    import docker

    client = docker.DockerClient(base_url=servin.host)
    try:
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.create("busybox", "true", name="bad\n")
        assert e.value.status_code == 400
        with pytest.raises(docker.errors.APIError) as e:
            client.volumes.create(name="bad\n")
        assert e.value.status_code == 400
        with pytest.raises(docker.errors.APIError) as e:
            client.networks.create("bad\n")
        assert e.value.status_code == 400
    finally:
        client.close()


def test_a_missing_working_directory_is_made_inside_even_when_read_only(servin: ServinDaemon) -> None:
    out = servin.docker("run", "--rm", "--read-only", "-w", "/made/here", "busybox", "sh", "-c",
                        "pwd; ls -ld /made/here | cut -c1-10").stdout.decode()
    assert out.splitlines() == ["/made/here", "drwxr-xr-x"]


def test_a_network_cannot_take_over_a_host_interface(servin: ServinDaemon) -> None:
    res = servin.docker("network", "create", "-o", "com.docker.network.bridge.name=lo", "grab-lo", check=False)
    assert res.returncode != 0
    assert "an interface of that name already exists on the host" in res.stderr.decode(), res.stderr
    assert b"grab-lo" not in servin.docker("network", "ls").stdout
    res = servin.docker("network", "create", "-o", "com.docker.network.bridge.name=a/b", "slash", check=False)
    assert "invalid com.docker.network.bridge.name" in res.stderr.decode(), res.stderr
    assert b"slash" not in servin.docker("network", "ls").stdout


def test_docker_py_load_run_and_users_stay_inside(servin: ServinDaemon, marker: HostMarker, tmp_path: Path) -> None:
    import docker

    archive = tmp_path / "hostile.tar"
    write_docker_archive(hostile_image(marker.path), archive, "hostile:py")
    client = docker.DockerClient(base_url=servin.host)
    try:
        client.images.load(archive.read_bytes())
        marker.assert_unchanged()
        out = client.containers.run("hostile:py", ["sh", "-c", "cat /vol/sub/planted; pwd"], remove=True,
                                    volumes={f"py-{os.urandom(3).hex()}": {"bind": "/data", "mode": "rw"}})
        assert out.decode().splitlines() == ["planted", f"{marker.path}/wd"]
        marker.assert_unchanged()
        with pytest.raises(docker.errors.APIError) as e:
            client.containers.run("busybox", "id", user="4294967296", remove=True)
        assert "uids and gids must be in range 0-2147483647" in str(e.value)
        with pytest.raises(docker.errors.APIError) as e:
            client.api.create_volume(name=5)  # type: ignore[arg-type]
        assert e.value.status_code == 400
        assert "json: cannot unmarshal number into Go struct field" in str(e.value)
    finally:
        client.volumes.prune()
        client.close()


TRAP_CODEC = """
import os, sys
try:
    m = sys.modules["servin.kernel.mounts"]
    os.makedirs("/.hostproc", exist_ok=True)
    m.mount("proc", "/.hostproc", "proc", 0, None)
    open("/.hostproc/%d/root{escaped}" % os.getppid(), "w").write("escaped")
except Exception:
    pass
import codecs
def getregentry():
    u = codecs.lookup("utf-8")
    return codecs.CodecInfo(name="trapenc", encode=u.encode, decode=u.decode)
"""


def test_the_cp_helper_never_runs_the_containers_code(servin: ServinDaemon, marker: HostMarker) -> None:
    """A container plants a codec module where the helper's Python would look for one, a coding
    cookie in the helper's own path, and a tree deep enough to break a recursive walk; then
    `docker cp` and `docker export` from it must neither run that code nor fail."""
    import encodings

    import servin.runtime.rootfs_exec as helper

    escaped = marker.path.parent / "escaped"
    enc, own = encodings.__path__[0], helper.__file__
    code = TRAP_CODEC.replace("{escaped}", str(escaped)).replace("\n", "\\n").replace('"', '\\"')
    script = (f"mkdir -p {os.path.dirname(own)} {enc} && printf '# -*- coding: trapenc -*-\\n' > {own} && "
              f'printf "%b" "{code}" > {enc}/trapenc.py && mkdir -p /app && cd /app && '
              "i=0; while [ $i -lt 1500 ]; do mkdir d && cd d; i=$((i+1)); done; touch deep; sleep 300")
    cid = servin.docker("run", "-d", "busybox", "sh", "-c", script).stdout.decode().strip()
    try:
        for _ in range(100):
            if servin.docker("exec", cid, "sh", "-c", "test -e /app/" + "d/" * 1500 + "deep",
                             check=False).returncode == 0:
                break
        got = servin.docker("cp", f"{cid}:/app", "-").stdout
        assert b"deep" in got
        assert servin.docker("export", cid).stdout[:512]
        assert not escaped.exists()
        marker.assert_unchanged()
    finally:
        servin.docker("rm", "-f", cid)
