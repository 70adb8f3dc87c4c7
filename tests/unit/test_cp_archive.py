"""Pure parts of docker cp: the path-stat header, Go FileMode bits, Docker's path rules, the tar
writer and the extraction rules of PUT /containers/{id}/archive."""

from __future__ import annotations

import base64
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from servin import archive
from servin.api.wire import archive as wire
from servin.runtime import rootfs_exec as rx
from servin.runtime.rootfs import PathStat

pytestmark = pytest.mark.unit
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chown, mknod)")


# ---------------------------------------------------------------------------- wire


@pytest.mark.parametrize("st_mode, expected", [
    (stat.S_IFDIR | 0o755, (1 << 31) | 0o755),
    (stat.S_IFDIR | 0o1777, (1 << 31) | (1 << 20) | 0o777),  # sticky
    (stat.S_IFLNK | 0o777, (1 << 27) | 0o777),
    (stat.S_IFREG | 0o644, 0o644),
    (stat.S_IFREG | 0o4755, (1 << 23) | 0o755),  # setuid
    (stat.S_IFREG | 0o2755, (1 << 22) | 0o755),  # setgid
    (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
    (stat.S_IFBLK | 0o660, (1 << 26) | 0o660),
    (stat.S_IFIFO | 0o600, (1 << 25) | 0o600),
    (stat.S_IFSOCK | 0o755, (1 << 24) | 0o755),
])
def test_go_file_mode(st_mode: int, expected: int) -> None:
    assert wire.go_file_mode(st_mode) == expected


def test_rfc3339_like_go() -> None:
    assert wire.rfc3339_nano(1_704_067_200 * 10**9) == "2024-01-01T00:00:00Z"
    assert wire.rfc3339_nano(1_704_067_200 * 10**9 + 500_000_000) == "2024-01-01T00:00:00.5Z"
    assert wire.rfc3339_nano(1_704_067_200 * 10**9 + 123) == "2024-01-01T00:00:00.000000123Z"


def test_path_stat_header_is_base64_json_in_dockers_field_order() -> None:
    st = PathStat(name="link", size=9, mode=stat.S_IFLNK | 0o777, mtime_ns=1_704_067_200 * 10**9,
                  link_target="/data/sub")
    raw = base64.b64decode(wire.path_stat_header(st))
    assert raw == (b'{"name":"link","size":9,"mode":134218239,"mtime":"2024-01-01T00:00:00Z",'
                   b'"linkTarget":"/data/sub"}')
    assert json.loads(raw)["mode"] == (1 << 27) | 0o777


def test_no_changes_is_null_like_dockerd_20_10() -> None:
    assert wire.changes([]) is None


# ---------------------------------------------------------------------------- Docker's path rules


@pytest.mark.parametrize("path, expected", [
    ("etc", "/etc"), ("/etc/", "/etc/"), ("/etc/.", "/etc/."), ("etc/./", "/etc/./"),
    ("/", "/"), (".", "/."), ("/a/../../b", "/b"), ("//x//y", "/x/y"),
])
def test_absolute_keeps_trailing_slash_and_dot(path: str, expected: str) -> None:
    assert rx.absolute(path) == expected


def test_go_base_and_split() -> None:
    assert rx.go_base("/") == "/"
    assert rx.go_base("/a/.") == "."
    assert rx.go_base("/a/b/") == "b"
    assert rx.go_split("/a/b") == ("/a/", "b")
    assert rx.go_split("/a/") == ("/a/", "")


def test_resolve_parent_keeps_the_last_element(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # outside a chroot the "root" is the real one: resolve relative to a temp tree by path
    (tmp_path / "real").mkdir()
    os.symlink(str(tmp_path / "real"), tmp_path / "link")
    os.symlink("real", tmp_path / "rel")
    assert rx.resolve_parent(str(tmp_path / "link") + "/f") == str(tmp_path / "real") + "/f"
    assert rx.resolve_parent(str(tmp_path / "rel")) == str(tmp_path / "rel")  # the link itself
    assert rx.resolve_parent(str(tmp_path / "rel") + "/") == str(tmp_path / "real") + "/"


# ---------------------------------------------------------------------------- tar writing


def _tar_of(tmp_path: Path, path: str) -> dict[str, tarfile.TarInfo]:
    record, resolved, st = rx.stat_path(path)
    buf = io.BytesIO()
    rx.write_path(buf, resolved, rx.absolute(path), st)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        return {m.name: m for m in tf.getmembers()}


def test_write_path_names_like_dockerd(tmp_path: Path) -> None:
    d = tmp_path / "data"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f").write_bytes(b"hello\n")
    os.link(d / "sub" / "f", d / "hard")
    os.symlink("sub", d / "link")
    os.mkfifo(d / "fifo")
    names = _tar_of(tmp_path, str(d))
    assert set(names) == {"data", "data/fifo", "data/hard", "data/link", "data/sub", "data/sub/f"}
    assert names["data/link"].issym() and names["data/link"].linkname == "sub"
    assert names["data/fifo"].isfifo()
    assert names["data/hard"].isreg() and names["data/sub/f"].islnk()  # byte order: hard < sub
    assert names["data"].uname == "" and names["data"].gname == ""  # no NSS lookups
    assert set(_tar_of(tmp_path, str(d) + "/.")) == {".", "./fifo", "./hard", "./link", "./sub", "./sub/f"}
    assert set(_tar_of(tmp_path, str(d / "link") + "/")) == {"link", "link/f"}
    assert set(_tar_of(tmp_path, str(d / "link"))) == {"link"}


def test_a_file_that_shrinks_while_read_is_padded(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"x" * 100)
    st = os.lstat(f)
    f.write_bytes(b"y" * 10)
    buf = io.BytesIO()
    w = archive.TreeWriter(buf)
    w.add("f", str(f), st)
    w.close()
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        data = tf.extractfile("f").read()  # type: ignore[union-attr]
    assert data == b"y" * 10 + bytes(90)


# ---------------------------------------------------------------------------- extraction (PUT)


def _tar(*entries: tuple[str, str, bytes | str]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, payload in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid = 1_600_000_000, 1234, 5678
            if kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o750
                tf.addfile(ti)
            elif kind == "sym":
                ti.type, ti.linkname = tarfile.SYMTYPE, str(payload)
                tf.addfile(ti)
            else:
                data = payload if isinstance(payload, bytes) else payload.encode()
                ti.size, ti.mode = len(data), 0o4711
                tf.addfile(ti, io.BytesIO(data))
    buf.seek(0)
    return buf


@root_only
def test_extract_keeps_owner_mode_and_mtime(tmp_path: Path) -> None:
    rx.extract(_tar(("d", "dir", ""), ("d/f", "file", b"data"), ("d/l", "sym", "f")), str(tmp_path),
               no_overwrite_dir_non_dir=True, chown=None)
    st = os.lstat(tmp_path / "d" / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), int(st.st_mtime)) == (1234, 5678, 0o4711, 1_600_000_000)
    assert os.readlink(tmp_path / "d" / "l") == "f"
    assert int(os.lstat(tmp_path / "d").st_mtime) == 1_600_000_000  # directories last
    rx.extract(_tar(("f2", "file", b"x")), str(tmp_path), no_overwrite_dir_non_dir=True, chown=(7, 8))
    st = os.lstat(tmp_path / "f2")
    assert (st.st_uid, st.st_gid) == (7, 8)


@root_only
def test_extract_refuses_dir_non_dir_swaps_and_breakouts(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("f")
    with pytest.raises(rx.Failure, match="cannot overwrite directory"):
        rx.extract(_tar(("dir", "file", b"x")), str(tmp_path), no_overwrite_dir_non_dir=True, chown=None)
    with pytest.raises(rx.Failure, match="cannot overwrite non-directory"):
        rx.extract(_tar(("file", "dir", "")), str(tmp_path), no_overwrite_dir_non_dir=True, chown=None)
    rx.extract(_tar(("file", "dir", "")), str(tmp_path), no_overwrite_dir_non_dir=False, chown=None)
    assert (tmp_path / "file").is_dir()
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(rx.Failure, match="is outside of"):
        rx.extract(_tar(("../escaped", "file", b"x")), str(dest), no_overwrite_dir_non_dir=True, chown=None)
    with pytest.raises(rx.Failure, match="invalid symlink"):
        rx.extract(_tar(("l", "sym", "../../x")), str(dest), no_overwrite_dir_non_dir=True, chown=None)
    assert not (tmp_path / "escaped").exists()


def test_a_file_swapped_for_a_device_after_its_lstat_is_not_read(tmp_path) -> None:
    """The walk lstat()s a name, a running container swaps in a device node, the writer opens it:
    it must see the swap (fstat) and skip the entry rather than read the device."""
    import io
    import os
    import stat
    import tarfile

    from servin import archive

    (tmp_path / "f").write_bytes(b"regular")
    st = os.lstat(tmp_path / "f")
    os.unlink(tmp_path / "f")
    os.mknod(tmp_path / "f", stat.S_IFCHR | 0o644, os.makedev(1, 5))  # /dev/zero
    out = io.BytesIO()
    writer = archive.TreeWriter(out)
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        writer.add("f", "f", st, dir_fd=fd)
    finally:
        os.close(fd)
    writer.close()
    out.seek(0)
    assert tarfile.open(fileobj=out).getnames() == []
