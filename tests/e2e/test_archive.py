"""docker cp, export, diff and commit through the real docker CLI against a real Servin daemon."""

from __future__ import annotations

import base64
import io
import json
import os
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import ServinDaemon


def out(d: ServinDaemon, *args: str, **kw: object) -> str:
    return d.docker(*args, **kw).stdout.decode()  # type: ignore[arg-type]


def members(d: ServinDaemon, *args: str) -> dict[str, tarfile.TarInfo]:
    """`docker cp CONTAINER:PATH -` (a tar on stdout), by member name."""
    data = d.docker("cp", *args, "-").stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        return {m.name: m for m in tf.getmembers()}


def api_head(d: ServinDaemon, path: str) -> tuple[int, dict[str, str]]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(str(d.socket))
    s.sendall(f"HEAD /v1.41{path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = b""
    while b"\r\n\r\n" not in raw:
        chunk = s.recv(4096)
        if not chunk:
            break
        raw += chunk
    s.close()
    head = raw.split(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
    return int(head[0].split()[1]), headers


def path_stat(d: ServinDaemon, container: str, path: str) -> dict[str, object]:
    status, headers = api_head(d, f"/containers/{container}/archive?path={path}")
    assert status == 200, (status, headers)
    return json.loads(base64.b64decode(headers["x-docker-container-path-stat"]))


def _helpers() -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if b"servin.runtime.rootfs_exec" in (p / "cmdline").read_bytes():
                    found.append(int(p.name))
            except OSError:
                pass
    return found


def no_helpers_or_mounts(d: ServinDaemon) -> None:
    """Every helper has exited (a client that hangs up early is noticed a moment later) and no
    overlay of this daemon is mounted on the host."""
    deadline = time.monotonic() + 10
    while _helpers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _helpers() == []
    assert str(d.data_root) not in Path("/proc/self/mountinfo").read_text()


@pytest.fixture
def running(servin: ServinDaemon) -> Iterator[str]:
    name = "cp-run-" + uuid.uuid4().hex[:6]
    servin.docker("run", "-d", "--name", name, "busybox", "sh", "-c",
                  "mkdir -p /data/sub && echo hello > /data/sub/f && ln -s sub /data/link "
                  "&& ln -s /etc/passwd /data/abs && chmod 4750 /data/sub/f && touch /ready && sleep 300")
    try:
        for _ in range(100):
            if servin.docker("exec", name, "test", "-e", "/ready", check=False).returncode == 0:
                break
        yield name
    finally:
        servin.docker("rm", "-f", name, check=False)
        no_helpers_or_mounts(servin)


@pytest.fixture
def stopped(servin: ServinDaemon) -> Iterator[str]:
    name = "cp-stop-" + uuid.uuid4().hex[:6]
    servin.docker("run", "--name", name, "busybox", "sh", "-c",
                  "mkdir -p /data/sub && echo hello > /data/sub/f && ln -s sub /data/link "
                  "&& ln -s /etc/passwd /data/abs && chmod 4750 /data/sub/f")
    try:
        yield name
    finally:
        servin.docker("rm", "-f", name, check=False)
        no_helpers_or_mounts(servin)


@pytest.fixture(params=["running", "stopped"])
def container(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------------------- docker cp out


def test_cp_out_dir_file_and_symlinks(servin: ServinDaemon, container: str, tmp_path: Path) -> None:
    servin.docker("cp", f"{container}:/data", str(tmp_path))
    assert (tmp_path / "data/sub/f").read_text() == "hello\n"
    assert os.readlink(tmp_path / "data/link") == "sub"  # symlinks are kept
    assert os.readlink(tmp_path / "data/abs") == "/etc/passwd"  # never resolved on the host
    servin.docker("cp", f"{container}:/data/sub/f", str(tmp_path / "copy"))
    assert (tmp_path / "copy").read_text() == "hello\n"
    assert (tmp_path / "copy").stat().st_mode & 0o7777 == 0o4750
    # the contents of a directory with /. ; a link followed with -L
    servin.docker("cp", f"{container}:/data/sub/.", str(tmp_path / "contents"))
    assert (tmp_path / "contents/f").read_text() == "hello\n"
    servin.docker("cp", "-L", f"{container}:/data/abs", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:x:0:0")


def test_cp_out_tar_names_modes_and_owners(servin: ServinDaemon, container: str) -> None:
    tree = members(servin, f"{container}:/data")
    assert set(tree) == {"data", "data/sub", "data/sub/f", "data/link", "data/abs"}
    assert tree["data/sub/f"].mode == 0o4750 and tree["data/sub/f"].uid == 0
    assert tree["data/link"].issym() and tree["data/link"].linkname == "sub"
    # a trailing slash follows the link and names the entries after the request path
    assert set(members(servin, f"{container}:/data/link/")) == {"link", "link/f"}
    assert set(members(servin, f"{container}:/data/link")) == {"link"}


def test_path_stat_header(servin: ServinDaemon, container: str) -> None:
    st = path_stat(servin, container, "/data")
    assert st["name"] == "data" and st["mode"] == (1 << 31) | 0o755 and st["linkTarget"] == ""
    assert str(st["mtime"]).endswith("Z")
    st = path_stat(servin, container, "/data/link")
    assert st["mode"] == (1 << 27) | 0o777 and st["linkTarget"] == "/data/sub"
    st = path_stat(servin, container, "/data/sub/f")
    assert st["mode"] == (1 << 23) | 0o750 and st["size"] == 6
    status, _ = api_head(servin, f"/containers/{container}/archive?path=/nope")
    assert status == 404


def test_cp_missing_path_error(servin: ServinDaemon, container: str, tmp_path: Path) -> None:
    res = servin.docker("cp", f"{container}:/does/not/exist", str(tmp_path), check=False)
    assert res.returncode == 1
    assert f"Could not find the file /does/not/exist in container {container}" in res.stderr.decode()


def test_cp_cannot_escape_the_container_root(servin: ServinDaemon, running: str, tmp_path: Path) -> None:
    # links and ".." are resolved inside the container: these point at the host's /usr/lib and /
    servin.docker("exec", running, "sh", "-c", "ln -s ../../../../../../usr/lib /data/hostlib && "
                  "ln -s ../../../../../.. /data/up")
    res = servin.docker("cp", f"{running}:/data/hostlib/", str(tmp_path / "x"), check=False)
    assert res.returncode == 1 and "Could not find the file" in res.stderr.decode()
    res = servin.docker("cp", f"{running}:/../../../../usr/lib", str(tmp_path / "x"), check=False)
    assert res.returncode == 1 and "Could not find the file" in res.stderr.decode()
    marker = "servin-cp-" + uuid.uuid4().hex[:8]
    (tmp_path / marker).write_text("m\n")
    servin.docker("cp", str(tmp_path / marker), f"{running}:/data/up/")
    assert not Path("/" + marker).exists()
    assert out(servin, "exec", running, "cat", "/" + marker) == "m\n"


# ---------------------------------------------------------------------------- docker cp in


def test_cp_in_file_and_dir(servin: ServinDaemon, container: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "deep").mkdir(parents=True)
    (src / "deep/x.txt").write_text("x\n")
    (src / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(src / "run.sh", 0o751)
    os.symlink("deep/x.txt", src / "ln")
    servin.docker("cp", str(src), f"{container}:/tmp/")
    servin.docker("cp", str(src / "run.sh"), f"{container}:/renamed.sh")
    tree = members(servin, f"{container}:/tmp/src")
    assert tree["src/deep/x.txt"].size == 2
    assert tree["src/run.sh"].mode == 0o751
    assert tree["src/ln"].issym() and tree["src/ln"].linkname == "deep/x.txt"
    assert members(servin, f"{container}:/renamed.sh")["renamed.sh"].mode == 0o751


def test_cp_in_keeps_owners_and_archive_mode_uses_container_user(servin: ServinDaemon, tmp_path: Path) -> None:
    name = "cp-own-" + uuid.uuid4().hex[:6]
    f = tmp_path / "owned"
    f.write_text("o\n")
    os.chown(f, 1234, 5678)
    servin.docker("create", "--name", name, "-u", "nobody", "busybox", "true")
    try:
        servin.docker("cp", str(f), f"{name}:/tmp/plain")
        servin.docker("cp", "-a", str(f), f"{name}:/tmp/archived")
        assert (members(servin, f"{name}:/tmp/plain")["plain"].uid,
                members(servin, f"{name}:/tmp/plain")["plain"].gid) == (1234, 5678)
        m = members(servin, f"{name}:/tmp/archived")["archived"]
        assert (m.uid, m.gid) == (65534, 65534)
    finally:
        servin.docker("rm", "-f", name, check=False)
    no_helpers_or_mounts(servin)


def test_cp_in_running_is_seen_by_the_process(servin: ServinDaemon, running: str, tmp_path: Path) -> None:
    (tmp_path / "note").write_text("live\n")
    servin.docker("cp", str(tmp_path / "note"), f"{running}:/data/")
    assert out(servin, "exec", running, "cat", "/data/note") == "live\n"


def test_cp_in_stopped_then_start(servin: ServinDaemon, tmp_path: Path) -> None:
    name = "cp-start-" + uuid.uuid4().hex[:6]
    (tmp_path / "script.sh").write_text("echo from-script\n")
    servin.docker("create", "--name", name, "busybox", "sh", "/script.sh")
    try:
        servin.docker("cp", str(tmp_path / "script.sh"), f"{name}:/")
        assert out(servin, "start", "-a", name) == "from-script\n"
    finally:
        servin.docker("rm", "-f", name, check=False)
    no_helpers_or_mounts(servin)


def test_cp_into_a_non_directory(servin: ServinDaemon, container: str, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("f\n")
    res = servin.docker("cp", str(tmp_path / "f"), f"{container}:/data/sub/f/inside", check=False)
    assert res.returncode == 1
    assert "not a directory" in res.stderr.decode()
    (tmp_path / "d").mkdir()
    res = servin.docker("cp", str(tmp_path / "d"), f"{container}:/data/sub/f", check=False)
    assert res.returncode == 1
    assert "cannot copy directory" in res.stderr.decode()  # the CLI refuses, dockerd never sees it
    # noOverwriteDirNonDir: a file from the archive may not replace a directory
    (tmp_path / "sub").write_text("not a dir\n")
    res = servin.docker("cp", str(tmp_path / "sub"), f"{container}:/data/", check=False)
    assert res.returncode == 1
    assert "cannot overwrite directory" in res.stderr.decode()


# ---------------------------------------------------------------------------- export / diff / commit


def test_export_is_the_whole_filesystem(servin: ServinDaemon, container: str) -> None:
    res = subprocess.run(f"docker export {container} | tar t", shell=True, env=servin.env, capture_output=True,
                         timeout=60, check=True)
    names = set(res.stdout.decode().split())
    assert {"bin/busybox", "etc/passwd", "data/sub/f", "data/link"} <= names
    assert "proc/" in names and "sys/" in names  # the mount points, empty: what is mounted on them is not
    assert not any(n.startswith(("proc/", "sys/")) and n not in ("proc/", "sys/") for n in names)
    no_helpers_or_mounts(servin)


def test_diff_after_changes(servin: ServinDaemon) -> None:
    name = "diff-" + uuid.uuid4().hex[:6]
    servin.docker("create", "--name", name, "busybox", "true")
    try:
        assert out(servin, "diff", name) == ""
        servin.docker("rm", name)
        servin.docker("run", "--name", name, "busybox", "sh", "-c",
                      "rm /etc/group && echo x >> /etc/passwd && mkdir -p /tmp/a/b && touch /tmp/a/b/c")
        assert out(servin, "diff", name).splitlines() == [
            "C /etc", "D /etc/group", "C /etc/passwd",
            "C /tmp", "A /tmp/a", "A /tmp/a/b", "A /tmp/a/b/c",
        ]
    finally:
        servin.docker("rm", "-f", name, check=False)


def test_commit_with_change_then_run(servin: ServinDaemon) -> None:
    name = "commit-" + uuid.uuid4().hex[:6]
    tag = "committed-" + uuid.uuid4().hex[:6] + ":v1"
    servin.docker("run", "-d", "--name", name, "-e", "GREETING=hi", "busybox", "sh", "-c",
                  "echo baked > /baked && rm /etc/group && sleep 300")
    try:
        for _ in range(100):
            if servin.docker("exec", name, "test", "-e", "/baked", check=False).returncode == 0:
                break
        image_id = out(servin, "commit", "-m", "a message", "-a", "me", "--change", 'CMD ["cat", "/baked"]',
                       "--change", "ENV EXTRA=1", name, tag).strip()
        assert image_id.startswith("sha256:")
        assert out(servin, "inspect", "-f", "{{.State.Status}}", name).strip() == "running"  # unpaused
        assert out(servin, "run", "--rm", tag) == "baked\n"
        env = out(servin, "run", "--rm", tag, "env")
        assert "GREETING=hi" in env and "EXTRA=1" in env
        # the deletion travelled as a whiteout
        assert servin.docker("run", "--rm", tag, "ls", "/etc/group", check=False).returncode != 0
        info = json.loads(out(servin, "image", "inspect", tag))[0]
        assert info["Author"] == "me" and info["Parent"].startswith("sha256:")
        assert len(info["RootFS"]["Layers"]) == 2
    finally:
        servin.docker("rm", "-f", name, check=False)
        servin.docker("rmi", "-f", tag, check=False)
    no_helpers_or_mounts(servin)


def test_cp_reaches_the_volumes_of_a_stopped_container(servin: ServinDaemon, tmp_path: Path) -> None:
    d = servin
    cid = d.docker("create", "-v", "/vol1", "busybox", "true").stdout.decode().strip()
    try:
        src = tmp_path / "data.txt"
        src.write_text("into the volume\n")
        d.docker("cp", str(src), f"{cid}:/vol1/")
        d.docker("start", "-a", cid)
        back = tmp_path / "back.txt"
        d.docker("cp", f"{cid}:/vol1/data.txt", str(back))
        assert back.read_text() == "into the volume\n"
        vol = json.loads(d.docker("inspect", cid).stdout)[0]["Mounts"][0]["Source"]
        assert Path(vol, "data.txt").read_text() == "into the volume\n"  # in the volume, not the layer
    finally:
        d.docker("rm", "-f", "-v", cid)
