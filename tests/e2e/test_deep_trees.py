"""Directory trees thousands of levels deep, made by a container with `mkdir` in a loop or brought by
an image layer, through the docker CLI: they are sized, diffed, committed and removed; what cannot
be done fails with a clean message (never Python's RecursionError text); the daemon starts again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servin.images.seed import build_rootfs_tar, host_architecture
from tests.support.daemon import ServinDaemon
from tests.support.hostile import Image, entry, sha, tar_of, write_docker_archive

pytestmark = pytest.mark.e2e

LEVELS = 2000  # "/d" * 2000: 4,000 bytes, within PATH_MAX
MKDIR_LOOP = f"i=0; while [ $i -lt {LEVELS} ]; do mkdir d && cd d || exit 1; i=$((i+1)); done"


def restart(d: ServinDaemon) -> None:
    d.stop()
    d.start(timeout=60)
    assert d.docker("version", "--format", "{{.Server.Version}}").returncode == 0


def no_python_text(*outputs: bytes) -> None:
    for out in outputs:
        assert b"RecursionError" not in out and b"Traceback" not in out and b"maximum recursion" not in out, out


def test_a_tree_a_container_made_2000_deep(daemon: ServinDaemon) -> None:
    d = daemon
    d.docker("run", "--name", "deep", "busybox", "sh", "-c", MKDIR_LOOP, timeout=300)
    # sized (docker ps -s, system df), diffed and committed, at that depth
    sizes = json.loads(d.docker("ps", "-a", "-s", "--format", "{{json .}}").stdout.splitlines()[0])
    assert sizes["Names"] == "deep"
    d.docker("system", "df")
    changes = d.docker("diff", "deep", timeout=300).stdout.decode().splitlines()
    assert len(changes) == LEVELS and changes[0] == "A /d" and changes[-1] == "A " + "/d" * LEVELS
    d.docker("commit", "deep", "deep:committed", timeout=300)
    out = d.docker("run", "--rm", "deep:committed", "sh", "-c",
                   "cd " + "/d" * LEVELS + " && pwd | wc -c").stdout
    assert out.strip() == str(2 * LEVELS + 1).encode()
    # removed, and nothing of it left to trip the next start
    r = d.docker("rm", "deep", check=False)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert d.docker("ps", "-aq").stdout == b""
    assert not [p for p in (d.data_root / "containers").iterdir()]
    d.docker("rmi", "deep:committed")
    restart(d)
    d.docker("run", "--rm", "busybox", "true")


def test_a_tree_past_path_max_fails_cleanly_and_is_removed(daemon: ServinDaemon) -> None:
    """3,000 levels (6,000 bytes: no path can name the bottom), made by moving one chain under
    another. docker diff and commit refuse it by name; rm -f and --rm remove it; a daemon killed
    with it in place starts again."""
    d = daemon
    script = (f"{MKDIR_LOOP}; cd /; mkdir /t2 && cd /t2 && i=0; while [ $i -lt 1000 ]; do mkdir d && cd d; "
              "i=$((i+1)); done; cd / && mv /t2/d " + "/d" * LEVELS + "/ && echo moved && sleep 600")
    d.docker("run", "-d", "--name", "deeper", "busybox", "sh", "-c", script)
    for _ in range(600):
        if b"moved" in d.docker("logs", "deeper").stdout:
            break
        __import__("time").sleep(0.5)
    else:
        raise AssertionError(d.docker("logs", "deeper").stderr)
    r = d.docker("diff", "deeper", check=False, timeout=300)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode != 0 and b"directory tree too deep" in r.stderr, r.stderr
    r = d.docker("commit", "deeper", "deeper:x", check=False, timeout=300)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode != 0 and b"directory tree too deep" in r.stderr, r.stderr
    d.docker("ps", "-s")
    d.kill9()  # with the tree in place: the next start must not trip on it
    d.start(timeout=60)
    r = d.docker("rm", "-f", "deeper", check=False, timeout=120)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode == 0, r.stderr
    assert not [p for p in (d.data_root / "containers").iterdir()]
    restart(d)


def test_rm_of_a_deep_container_dir_left_by_a_crash(daemon: ServinDaemon) -> None:
    """A container dir without its record (a removal the daemon died in) is removed at start, at
    any depth."""
    d = daemon
    d.docker("run", "--name", "half", "busybox", "sh", "-c", MKDIR_LOOP, timeout=300)
    cid = d.docker("inspect", "--format", "{{.Id}}", "half").stdout.decode().strip()
    d.stop()
    (d.data_root / "containers" / cid / "container.json").unlink()
    d.start(timeout=60)
    assert not (d.data_root / "containers" / cid).exists()
    assert d.docker("ps", "-aq").stdout == b""


def _image(layers: list[bytes]) -> Image:
    config = {"architecture": host_architecture(), "os": "linux", "created": "2026-12-06T00:00:00Z",
              "config": {"Cmd": ["sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": [sha(t) for t in layers]}, "history": []}
    return Image(layers=layers, config=config)


def _deep_layer(top: str = "deep", levels: int = LEVELS) -> bytes:
    return tar_of([entry(f"{top}/" + "d/" * i, mode=0o755) for i in range(1, levels + 1)])


def test_load_of_a_deep_layer_with_a_wrong_diff_id(daemon: ServinDaemon, tmp_path: Path) -> None:
    d = daemon
    img = _image([build_rootfs_tar(), _deep_layer()])
    img.config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64  # wrong on purpose
    archive = tmp_path / "wrong.tar"
    write_docker_archive(img, archive, "deep:wrong")
    r = d.docker("load", "-i", str(archive), check=False, timeout=300)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode != 0 and b"invalid diffID for layer 1" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert [p.name for p in (d.data_root / "image" / "layers").iterdir() if p.name.startswith(".")] == []
    restart(d)
    assert d.docker("images", "-q", "deep:wrong").stdout == b""


def test_a_deep_image_layer_loads_runs_copies_up_and_saves(daemon: ServinDaemon, tmp_path: Path) -> None:
    """/mid: 1,500 levels, copied into a volume whole; /deep: 2,000 levels, whose bottom no host path
    below the store can name: its copy-up is refused by name, its tar saved through directory fds."""
    d = daemon
    img = _image([build_rootfs_tar(), _deep_layer(), _deep_layer("mid", 1500)])
    archive = tmp_path / "deep.tar"
    write_docker_archive(img, archive, "deep:ok")
    d.docker("load", "-i", str(archive), timeout=300)
    out = d.docker("run", "--rm", "-v", "midvol:/mid", "deep:ok", "sh", "-c",
                   "cd /mid" + "/d" * 1500 + " && pwd | wc -c", timeout=300).stdout
    assert out.strip() == str(len("/mid") + 2 * 1500 + 1).encode()
    r = d.docker("run", "--rm", "-v", "deepvol:/deep", "deep:ok", "true", check=False, timeout=300)
    no_python_text(r.stdout, r.stderr)
    assert r.returncode != 0 and b"directory tree too deep" in r.stderr, r.stderr
    saved = d.docker("save", "deep:ok", timeout=300).stdout
    assert _deep_layer() in saved and _deep_layer("mid", 1500) in saved  # byte for byte
    d.docker("rm", "-f", *d.docker("ps", "-aq").stdout.decode().split(), check=False)
    d.docker("volume", "rm", "midvol", "deepvol")
    d.docker("rmi", "deep:ok")
    restart(d)
