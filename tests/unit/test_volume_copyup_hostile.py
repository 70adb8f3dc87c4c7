"""Filling a volume from the image (copy-up) and the image's merged view (images.union), with
hostile layers built here as plain overlay-format dirs: a 0:0 character device is a whiteout, the
xattr trusted.overlay.opaque=y marks an opaque dir. A marker directory on the host, outside the
layers, must come out byte-for-byte and mode-for-mode unchanged (needs root: mknod, chown, xattrs)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from servin.core.volumes import copy_image_content
from servin.images import union

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="whiteouts, owners and trusted xattrs need root")

T1 = 1_600_000_000_123_456_789
T2 = 1_500_000_000_000_000_000


# ---- helpers ------------------------------------------------------------------------------------

def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below `root`, itself included: type, mode, owner, ctime, content or link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in ["", *dirnames, *filenames]:
            if not name and dirpath != str(root):
                continue
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            body: object = None
            if stat.S_ISREG(st.st_mode):
                body = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(path)
            out[os.path.relpath(path, root)] = (st.st_mode, st.st_uid, st.st_gid, st.st_ctime_ns, st.st_mtime_ns,
                                                body)
    return out


@pytest.fixture
def marker(tmp_path: Path):
    """`tmp/host/marker`: what an attack would read, write into or chmod."""
    m = tmp_path / "host" / "marker"
    (m / "sub").mkdir(parents=True)
    (m / "secret").write_bytes(b"host secret\n")
    (m / "secret").chmod(0o600)
    (m / "sub" / "deep").write_bytes(b"deep\n")
    (m / "sub").chmod(0o750)
    m.chmod(0o755)
    before = snapshot(m.parent)

    class Marker:
        path = m

        @staticmethod
        def assert_unchanged() -> None:
            assert snapshot(m.parent) == before, "the host marker was changed"

    yield Marker
    Marker.assert_unchanged()


def layer(tmp_path: Path, name: str) -> Path:
    d = tmp_path / "layers" / name
    d.mkdir(parents=True)
    return d


def mkdirs(base: Path, rel: str, mode: int = 0o755) -> Path:
    d = base / rel
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(mode)
    return d


def put(base: Path, rel: str, data: bytes = b"x", mode: int = 0o644) -> Path:
    p = base / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    p.chmod(mode)
    return p


def link(base: Path, rel: str, target: str) -> Path:
    p = base / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, p)
    return p


def whiteout(base: Path, rel: str) -> None:
    p = base / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(p, stat.S_IFCHR | 0o600, os.makedev(0, 0))


def opaque(d: Path) -> None:
    os.setxattr(d, union.OPAQUE_XATTR, b"y")


def tree(root: Path) -> dict[str, object]:
    """rel path → file content, link target, or "dir" (devices as "other")."""
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = os.lstat(p)
            rel = str(p.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = "->" + os.readlink(p)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = "dir"
            elif stat.S_ISREG(st.st_mode):
                out[rel] = p.read_bytes()
            else:
                out[rel] = "other"
    return out


def new_volume(tmp_path: Path, name: str = "v") -> Path:
    d = tmp_path / "volumes" / name / "_data"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def volume(tmp_path: Path) -> Path:
    return new_volume(tmp_path)


# ---- hostile images -----------------------------------------------------------------------------

def test_volume_path_with_dotdot_is_a_path_in_the_image(tmp_path, marker, volume):
    base = layer(tmp_path, "0")
    put(base, "etc/image-file", b"from the image")
    hostile = "/" + "../" * 40 + str(marker.path).lstrip("/")
    copy_image_content([base], hostile, volume)
    assert tree(volume) == {}  # the image has no such dir: nothing, and never the host's
    copy_image_content([base], "/../../../etc", volume)
    assert tree(volume) == {"image-file": b"from the image"}


def test_lower_symlink_under_an_upper_dir_is_hidden(tmp_path, marker, volume):
    low, up = layer(tmp_path, "0"), layer(tmp_path, "1")
    link(low, "data", str(marker.path))  # the lower layer's /data -> the host's marker
    put(up, "data/sub/new", b"upper")  # the upper layer's /data is a directory: it hides the symlink
    copy_image_content([low, up], "/data/sub", volume)
    assert tree(volume) == {"new": b"upper"}
    whole = new_volume(tmp_path, "whole")
    copy_image_content([low, up], "/data", whole)  # the whole of /data: only the upper dir
    assert tree(whole) == {"sub": "dir", "sub/new": b"upper"}


def test_symlink_then_dir_of_the_same_name_above_it(tmp_path, marker, volume):
    low, up = layer(tmp_path, "0"), layer(tmp_path, "1")
    mkdirs(low, "vol")
    link(low, "vol/x", str(marker.path))
    put(low, "vol/keep", b"k")
    put(up, "vol/x/secret", b"from the image", mode=0o4777)
    mkdirs(up, "vol/x", 0o777)
    mkdirs(up, "vol", 0o755)
    copy_image_content([low, up], "/vol", volume)
    assert tree(volume) == {"keep": b"k", "x": "dir", "x/secret": b"from the image"}
    assert stat.S_IMODE(os.lstat(volume / "x").st_mode) == 0o777
    assert stat.S_IMODE(os.lstat(volume / "x" / "secret").st_mode) == 0o4777


def test_names_planted_in_the_volume_are_never_followed(tmp_path, marker, volume):
    base = layer(tmp_path, "0")
    put(base, "vol/x/secret", b"image secret", mode=0o4777)
    mkdirs(base, "vol/x", 0o777)
    put(base, "vol/file", b"image file", mode=0o4755)
    put(base, "vol/other", b"other")
    # what a container sharing the volume could plant while the copy runs
    os.symlink(str(marker.path), volume / "x")
    os.symlink(str(marker.path / "secret"), volume / "file")
    copy_image_content([base], "/vol", volume)
    assert tree(volume) == {"x": "->" + str(marker.path), "file": "->" + str(marker.path / "secret"),
                            "other": b"other"}


def test_a_dir_replaced_by_a_symlink_after_it_was_made_is_not_entered(tmp_path, marker, volume, monkeypatch):
    """The race between mkdirat and opening the new directory: the open refuses the symlink."""
    base = layer(tmp_path, "0")
    put(base, "vol/d/f", b"f")
    put(base, "vol/z", b"z")
    real_mkdir = os.mkdir

    def mkdir_then_swap(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        if name == "d":
            os.rmdir(name, dir_fd=dir_fd)
            os.symlink(str(marker.path), name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    copy_image_content([base], "/vol", volume)
    monkeypatch.undo()
    assert tree(volume) == {"d": "->" + str(marker.path), "z": b"z"}


def test_volume_root_is_not_followed(tmp_path, marker):
    base = layer(tmp_path, "0")
    put(base, "vol/f", b"f")
    dest = tmp_path / "v" / "_data"
    dest.parent.mkdir()
    os.symlink(str(marker.path), dest)
    with pytest.raises(OSError):
        copy_image_content([base], "/vol", dest)


def test_symlinks_resolve_inside_the_image(tmp_path, marker, volume):
    base = layer(tmp_path, "0")
    put(base, "usr/lib/mysql/ibdata", b"db")
    mkdirs(base, "var")
    link(base, "var/lib", "/usr/lib")  # absolute: the image's /usr/lib, not the host's
    found = union.resolve([base], "/var/lib/mysql")
    assert found is not None and found.parts == ("usr", "lib", "mysql") and found.is_dir
    copy_image_content([base], "/var/lib/mysql", volume)
    assert tree(volume) == {"ibdata": b"db"}
    # relative links climb no higher than the image's root
    link(base, "esc", "../../../../../../../../../.." + str(marker.path))
    assert union.resolve([base], "/esc") is None
    link(base, "up", "../../../../../../usr/lib")
    found = union.resolve([base], "/up/mysql/ibdata")
    assert found is not None and found.parts == ("usr", "lib", "mysql", "ibdata")
    link(base, "host", str(marker.path))
    assert union.resolve([base], "/host/secret") is None
    other = new_volume(tmp_path, "other")
    copy_image_content([base], "/host", other)
    assert tree(other) == {}


def test_symlink_loops_and_files_as_dirs_are_absent(tmp_path):
    base = layer(tmp_path, "0")
    link(base, "a", "b")
    link(base, "b", "a")
    put(base, "f", b"f")
    assert union.resolve([base], "/a") is None
    assert union.resolve([base], "/f/x") is None
    assert union.resolve([base], "/f/..") is None
    assert union.entry([base], ["a", "x"]) is None  # entry never follows a symlink
    assert union.resolve([base], "/../../f").parts == ("f",)
    with pytest.raises(ValueError):
        union.entry([base], [".."])


def test_image_store_read_file_stays_in_the_image(tmp_path, marker):
    from servin.images.service import ImageService

    base = layer(tmp_path, "0")
    link(base, "etc", str(marker.path))
    store = ImageService(tmp_path / "images")
    store.layer_dirs = lambda ref: [base]  # type: ignore[method-assign]
    assert store.read_file("x", "/etc/secret") is None
    assert store.read_file("x", "/../../../../" + str(marker.path) + "/secret") is None


# ---- the merged view ----------------------------------------------------------------------------

def test_whiteouts_and_opaque_dirs(tmp_path, volume):
    l0, l1, l2 = layer(tmp_path, "0"), layer(tmp_path, "1"), layer(tmp_path, "2")
    put(l0, "vol/a", b"a0")
    put(l0, "vol/b", b"b0")
    put(l0, "vol/d/x", b"x0")
    put(l0, "vol/e/old", b"old")
    put(l0, "vol/f", b"f0")
    whiteout(l1, "vol/a")
    put(l1, "vol/d/y", b"y1")
    opaque(l1 / "vol" / "d")
    whiteout(l1, "vol/e")
    put(l1, "vol/c", b"c1")
    put(l2, "vol/e/new", b"new")  # a dir again above the whiteout: only what it holds
    put(l2, "vol/b", b"b2")
    mkdirs(l2, "vol/f")  # a dir above a file: the file is gone
    put(l2, "vol/f/g", b"g")
    top_first = [l2, l1, l0]
    root = union.resolve(top_first, "/vol")
    assert root is not None
    assert sorted(union.listdir(root)) == ["b", "c", "d", "e", "f"]
    assert union.entry(top_first, ["vol", "a"]) is None
    assert union.entry(top_first, ["vol", "d", "x"]) is None
    assert union.entry(top_first, ["vol", "e", "old"]) is None
    copy_image_content([l0, l1, l2], "/vol", volume)
    assert tree(volume) == {"b": b"b2", "c": b"c1", "d": "dir", "d/y": b"y1", "e": "dir", "e/new": b"new",
                            "f": "dir", "f/g": b"g"}
    assert union.OPAQUE_XATTR not in os.listxattr(volume / "d")


def test_whited_out_volume_dir_copies_nothing(tmp_path, volume):
    l0, l1 = layer(tmp_path, "0"), layer(tmp_path, "1")
    put(l0, "vol/a", b"a")
    whiteout(l1, "vol")
    copy_image_content([l0, l1], "/vol", volume)
    assert tree(volume) == {}


def test_owners_modes_times_and_links_are_kept(tmp_path, volume):
    base = layer(tmp_path, "0")
    vol = mkdirs(base, "vol", 0o2775)
    tool = put(base, "vol/bin/tool", b"\x7fELF", mode=0o755)
    os.chown(tool, 1234, 5678)
    tool.chmod(0o4755)  # after the chown, which clears setuid
    os.utime(tool, ns=(T2, T1))
    os.setxattr(tool, "user.note", b"kept")
    tmp = mkdirs(base, "vol/tmp", 0o1777)
    os.chown(tmp, 42, 43)
    os.utime(tmp, ns=(T2, T1))
    lnk = link(base, "vol/bin/sh", "tool")
    os.lchown(lnk, 7, 8)
    os.utime(lnk, ns=(T2, T1), follow_symlinks=False)
    os.mkfifo(base / "vol" / "fifo")
    os.mknod(base / "vol" / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chown(vol, 999, 998)
    copy_image_content([base], "/vol", volume)
    assert tree(volume) == {"bin": "dir", "bin/tool": b"\x7fELF", "bin/sh": "->tool", "tmp": "dir"}
    st = os.lstat(volume / "bin" / "tool")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (0o4755, 1234, 5678, T1)
    assert os.getxattr(volume / "bin" / "tool", "user.note") == b"kept"
    st = os.lstat(volume / "tmp")
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (0o1777, 42, 43, T1)
    st = os.lstat(volume / "bin" / "sh")
    assert (st.st_uid, st.st_gid, st.st_mtime_ns) == (7, 8, T1)
    st = os.lstat(volume)  # the volume's root takes the image dir's owner and mode
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2775, 999, 998)


def test_big_file_is_copied_whole(tmp_path, volume):
    base = layer(tmp_path, "0")
    data = os.urandom(3 << 20)
    put(base, "vol/big", data)
    copy_image_content([base], "/vol", volume)
    assert (volume / "big").read_bytes() == data


def test_container_path_is_cleaned_inside_the_root():
    assert union.container_path("/../../etc") == "/etc"
    assert union.container_path("../x/./y/") == "/x/y"
    assert union.container_path("//a//b") == "/a/b"
    assert union.container_path("/") == "/"
    assert union.container_path("") == "/"
