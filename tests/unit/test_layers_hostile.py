"""Hostile layer tars: nothing outside the layer directory is created, changed or removed.

Each attack runs against a marker directory on the host (files of known content, modes, owners and
xattrs) next to the layer's directory; after the extraction attempt the marker must be exactly as
it was, and the result is either a clean InvalidArgument or an extraction that stays inside dest.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from servin.errors import InvalidArgument
from servin import safefs
from servin.images import tarsplit
from servin.images.layers import OPAQUE_XATTR, extract_layer
from servin.images.service import ImageService
from tests.unit.test_image_store import docker_archive

pytestmark = pytest.mark.unit

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted.* xattrs)")
MTIME = 1_600_000_000


def make_tar(entries: list[tuple]) -> bytes:
    """entries: (name, kind, opts) with kind in file/dir/symlink/hardlink/fifo/chr/raw."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, *rest in entries:
            opts = rest[0] if rest else {}
            ti = tarfile.TarInfo(name)
            ti.mtime = opts.get("mtime", MTIME)
            ti.uid, ti.gid = opts.get("uid", 0), opts.get("gid", 0)
            ti.mode = opts.get("mode", 0o755 if kind == "dir" else 0o644)
            ti.pax_headers = opts.get("pax", {})
            data = opts.get("data", b"") if kind == "file" else None
            if kind == "file":
                ti.size = len(data)
            else:
                ti.type = {
                    "dir": tarfile.DIRTYPE,
                    "symlink": tarfile.SYMTYPE,
                    "hardlink": tarfile.LNKTYPE,
                    "fifo": tarfile.FIFOTYPE,
                    "chr": tarfile.CHRTYPE,
                }[kind]
                ti.linkname = opts.get("target", "")
                ti.devmajor, ti.devminor = opts.get("dev", (0, 0))
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def snapshot(top: Path) -> dict[str, tuple]:
    """Everything about a tree that an attack could change: entries, bytes, modes, owners, xattrs."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in ["", *dirnames, *filenames]:
            path = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(path)
            data = b""
            if stat.S_ISREG(st.st_mode):
                data = Path(path).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                data = os.readlink(path).encode()
            xattrs = {k: os.getxattr(path, k, follow_symlinks=False) for k in os.listxattr(path, follow_symlinks=False)}
            out[os.path.relpath(path, top)] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, data, xattrs)
    return out


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """The marker directory: what a hostile layer must not touch."""
    h = tmp_path / "host"
    (h / "sub").mkdir(parents=True)
    (h / "secret").write_bytes(b"do not touch\n")
    (h / "secret").chmod(0o640)
    (h / "sub" / "x").write_bytes(b"x" * 100)
    (h / "sub" / "x").chmod(0o600)
    (h / "sub").chmod(0o750)
    if os.geteuid() == 0:
        os.chown(h / "secret", 1234, 1234)
    return h


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    d = tmp_path / "layer" / "diff"
    d.mkdir(parents=True)
    return d


@pytest.fixture
def attempt(tmp_path: Path, host: Path, dest: Path):
    """Extract a layer; the marker (and everything beside the layer) must be unchanged after it.
    Returns the result, or the InvalidArgument raised."""

    def outside() -> dict[str, tuple]:
        return {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("layer")}

    def run(entries: list[tuple]):
        before = outside()
        data = make_tar(entries)
        try:
            result = extract_layer(io.BytesIO(data), dest, split_path=dest.parent / tarsplit.SPLIT_FILE)
        except InvalidArgument as e:
            result = e
        assert outside() == before
        return result

    return run


# ---------------------------------------------------------------------- directory metadata set last


@pytest.mark.parametrize("target", ["host", "host/secret", "../../host", "../../host/secret"])
def test_dir_replaced_by_symlink_keeps_its_mode_off_the_target(attempt, host, dest, target):
    link = str(host.parent / target) if not target.startswith("..") else target
    result = attempt(
        [
            ("d", "dir", {"mode": 0o4777}),
            ("d", "symlink", {"target": link}),
            ("later", "dir", {"mode": 0o4777}),
            ("later/f", "file", {"data": b"f"}),
        ]
    )
    assert not isinstance(result, Exception)
    assert os.readlink(dest / "d") == link
    assert stat.S_IMODE(os.lstat(dest / "later").st_mode) == 0o4777


def test_parent_replaced_by_symlink_keeps_child_modes_off_the_host(attempt, host, dest):
    result = attempt(
        [
            ("a", "dir"),
            ("a/sub", "dir", {"mode": 0o4777, "mtime": 1}),
            ("a", "symlink", {"target": str(host)}),
        ]
    )
    assert not isinstance(result, Exception)
    assert os.readlink(dest / "a") == str(host)


def test_dir_replaced_by_file_keeps_the_files_mode(attempt, dest):
    result = attempt([("d", "dir", {"mode": 0o4777}), ("d", "file", {"data": b"x", "mode": 0o644})])
    assert not isinstance(result, Exception)
    assert stat.S_IMODE(os.lstat(dest / "d").st_mode) == 0o644


@pytest.mark.parametrize("later", [("a/f", "file", {"data": b"evil"}), ("a/sub/new", "dir"), ("a/sub/x", "fifo")])
def test_entry_under_a_parent_replaced_by_symlink_is_refused(attempt, host, later):
    result = attempt([("a", "dir"), ("a/sub", "dir"), ("a", "symlink", {"target": str(host)}), later])
    assert isinstance(result, InvalidArgument)
    assert "goes through a symlink" in str(result)


def test_cached_directory_is_not_reused_after_its_parent_is_replaced(attempt, host):
    # "a/sub" is the open directory when "a" (a root entry) becomes a symlink to the host
    result = attempt(
        [
            ("a", "dir"),
            ("a/sub", "dir"),
            ("a/sub/f", "file", {"data": b"1"}),
            ("a", "symlink", {"target": str(host)}),
            ("a/sub/g", "file", {"data": b"2"}),
        ]
    )
    assert isinstance(result, InvalidArgument)
    assert "goes through a symlink" in str(result)


def test_entry_under_a_file_is_refused(attempt):
    result = attempt([("f", "file", {"data": b"x"}), ("f/g", "file", {"data": b"y"})])
    assert isinstance(result, InvalidArgument)
    assert "is not a directory" in str(result)


# ---------------------------------------------------------------------- whiteouts


@pytest.mark.parametrize("name", [".wh.", ".wh..", ".wh..."])
@pytest.mark.parametrize("where", ["", "d/", "d/e/"])
def test_whiteout_of_the_directory_or_its_parent_is_refused(attempt, dest, name, where):
    result = attempt([("d", "dir"), ("d/e", "dir"), ("d/e/f", "file", {"data": b"f"}), (where + name, "file")])
    assert isinstance(result, InvalidArgument)
    assert str(result) == f"invalid layer: invalid whiteout name {where + name!r}"
    assert (dest / "d" / "e" / "f").read_bytes() == b"f"


def test_whiteout_through_a_symlinked_parent_is_refused(attempt, host):
    result = attempt([("l", "symlink", {"target": str(host)}), ("l/.wh.secret", "file")])
    assert isinstance(result, InvalidArgument)


@pytest.mark.kernel
@root_only
def test_whiteout_named_three_dots_is_an_ordinary_whiteout(attempt, dest):
    result = attempt([("d", "dir"), ("d/...", "file"), ("d/.wh....", "file")])
    assert not isinstance(result, Exception)
    st = os.lstat(dest / "d" / "...")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# ---------------------------------------------------------------------- opaque markers


def test_opaque_marker_of_a_dir_replaced_by_symlink_is_dropped(attempt, host):
    result = attempt(
        [
            ("o", "dir"),
            ("o/.wh..wh..opq", "file"),
            ("p", "dir"),
            ("p/sub", "dir"),
            ("p/sub/.wh..wh..opq", "file"),
            ("o", "symlink", {"target": str(host)}),
            ("p", "symlink", {"target": str(host)}),
        ]
    )
    assert not isinstance(result, Exception)
    assert OPAQUE_XATTR not in os.listxattr(host)


def test_opaque_marker_under_a_symlink_is_refused(attempt, host):
    result = attempt([("o", "symlink", {"target": str(host)}), ("o/.wh..wh..opq", "file")])
    assert isinstance(result, InvalidArgument)


# ---------------------------------------------------------------------- hardlinks


@pytest.mark.parametrize(
    "target, wording",
    [
        ("../../host/secret", "escapes the layer root"),
        ("a/../../../host/secret", "escapes the layer root"),
        ("HOST/secret", "missing"),  # an absolute name is a name inside the layer
        ("l/secret", "goes through a symlink"),
        ("l", None),  # the symlink itself: linked, not followed
        ("d", "to directory"),
        ("f/x", "is not a directory"),
        ("", "to the root"),
    ],
)
def test_hardlink_targets(attempt, host, dest, target, wording):
    target = target.replace("HOST", str(host))
    result = attempt(
        [
            ("l", "symlink", {"target": str(host)}),
            ("d", "dir"),
            ("f", "file", {"data": b"f"}),
            ("h", "hardlink", {"target": target}),
        ]
    )
    if wording is None:
        assert not isinstance(result, Exception)
        assert os.lstat(dest / "h").st_ino == os.lstat(dest / "l").st_ino
        assert os.readlink(dest / "h") == str(host)
    else:
        assert isinstance(result, InvalidArgument)
        assert wording in str(result)
        assert not (dest / "h").exists()


# ---------------------------------------------------------------------- member names


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/../evil", "./../evil"])
def test_names_escaping_the_root_are_refused(attempt, tmp_path, name):
    result = attempt([("a", "dir"), (name, "file", {"data": b"evil"})])
    assert isinstance(result, InvalidArgument)
    assert "escapes the layer root" in str(result)
    assert not (tmp_path / "evil").exists()


def test_absolute_names_are_extracted_inside(attempt, host, dest):
    name = str(host / "secret")
    result = attempt([("/abs/file", "file", {"data": b"a"}), (name, "file", {"data": b"evil", "mode": 0o4777})])
    assert not isinstance(result, Exception)
    assert (dest / "abs" / "file").read_bytes() == b"a"
    assert (dest / name.lstrip("/")).read_bytes() == b"evil"


# ---------------------------------------------------------------------- through the image store


@pytest.mark.parametrize(
    "layer",
    [
        make_tar([("f", "file", {"data": b"x" * 5000})])[:1500],  # truncated in a file's data
        make_tar([("f", "file", {"data": b"x"})])[:300],  # truncated in a header
        b"\x00" * 511 + b"garbage" * 200,
        make_tar([("d", "dir"), ("d/e", "file", {"data": b"e"}), ("d/.wh..", "file")]),
        make_tar([("a", "dir"), ("a", "symlink", {"target": "/"}), ("a/etc/x", "file")]),
    ],
    ids=["truncated-data", "truncated-header", "garbage", "whiteout-parent", "symlinked-parent"],
)
def test_store_leaves_nothing_behind(tmp_path, host, layer):
    store = ImageService(tmp_path / "images")
    (tmp_path / "l.tar").write_bytes(layer)
    before = snapshot(host)
    with pytest.raises(InvalidArgument, match="invalid layer"):
        store.import_tarball(tmp_path / "l.tar", repo=None, tag=None, changes=[], message="")
    docker_archive(tmp_path / "a.tar", [layer], ["evil:1"])
    with pytest.raises(InvalidArgument, match="invalid layer"):
        store.load_archive(tmp_path / "a.tar")
    assert list((store.root / "layers").iterdir()) == []
    assert store.list() == []
    assert snapshot(host) == before


def test_store_load_of_the_chmod_attack_leaves_the_host_alone(tmp_path, host):
    store = ImageService(tmp_path / "images")
    layer = make_tar([("d", "dir", {"mode": 0o4777}), ("d", "symlink", {"target": str(host / "secret")}), ("e", "dir")])
    docker_archive(tmp_path / "a.tar", [layer], ["chmod:1"])
    before = snapshot(host)
    assert store.load_archive(tmp_path / "a.tar") == ["Loaded image: chmod:1"]
    assert snapshot(host) == before
    diff = store.layer_dirs("chmod:1")[0]
    assert os.readlink(diff / "d") == str(host / "secret")


def test_no_fd_is_left_open(attempt, host, dest):
    before = sorted(os.listdir("/proc/self/fd"))
    good = [("a", "dir"), ("a/b", "dir"), ("a/b/f", "file", {"data": b"f"}), ("h", "hardlink", {"target": "a/b/f"})]
    assert not isinstance(attempt(good), Exception)
    bad = [("c", "dir"), ("c/d", "dir"), ("c", "symlink", {"target": str(host)}), ("c/d/e", "file")]
    assert isinstance(attempt(bad), InvalidArgument)
    assert sorted(os.listdir("/proc/self/fd")) == before


# ---------------------------------------------------------------------- a good layer, exactly


@pytest.mark.kernel
@root_only
def test_good_layer_extracts_exactly(tmp_path, dest):
    file_data = b"#!/bin/sh\n" * 10
    entries = [
        ("private", "dir", {"mode": 0o700, "uid": 5, "gid": 6, "mtime": 1_500_000_001}),
        ("tmp", "dir", {"mode": 0o1777, "mtime": 1_500_000_002}),
        ("tmp/f", "file", {"data": b"t", "mtime": 1_400_000_000}),
        ("shared", "dir", {"mode": 0o2755, "gid": 50, "mtime": 1_500_000_003}),
        ("shared/deep", "dir", {"mode": 0o750, "mtime": 1_500_000_004}),
        ("shared/deep/suid", "file", {"data": file_data, "mode": 0o4755, "uid": 1000, "gid": 1001}),
        ("shared/deep/again", "hardlink", {"target": "shared/deep/suid"}),
        ("implied/leaf", "file", {"data": b"l", "mode": 0o600}),
        ("link", "symlink", {"target": "/shared/deep/suid", "uid": 7, "gid": 8, "mtime": 1_300_000_000}),
        ("fifo", "fifo", {"mode": 0o620}),
        ("null", "chr", {"dev": (1, 3), "mode": 0o666}),
        ("gone", "file", {"data": b"soon"}),
        (".wh.gone", "file"),
        (".wh.lower", "file"),
        ("opq", "dir", {"mode": 0o755, "mtime": 1_500_000_005}),
        ("opq/.wh..wh..opq", "file"),
        ("opq/new", "file", {"data": b"n"}),
        ("x", "file", {"data": b"x", "pax": {"SCHILY.xattr.user.note": "hi", "SCHILY.xattr.trusted.t": "v"}}),
        ("xd", "dir", {"pax": {"SCHILY.xattr.trusted.d": "dv"}, "mtime": 1_500_000_006}),
        (".wh..wh.plnk", "dir"),
    ]
    data = make_tar(entries)
    result = extract_layer(io.BytesIO(data), dest, split_path=dest.parent / tarsplit.SPLIT_FILE)
    assert result.diff_id == "sha256:" + hashlib.sha256(data).hexdigest()
    assert result.tar_size == len(data)
    assert result.size == len(file_data) + 1 + 1 + 4 + 1 + 1 + len("/shared/deep/suid")

    def meta(rel: str) -> tuple[int, int, int, float]:
        st = os.lstat(dest / rel)
        return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime

    assert meta("private") == (0o700, 5, 6, 1_500_000_001)
    assert meta("tmp") == (0o1777, 0, 0, 1_500_000_002)
    assert meta("tmp/f") == (0o644, 0, 0, 1_400_000_000)
    assert meta("shared") == (0o2755, 0, 50, 1_500_000_003)
    assert meta("shared/deep") == (0o750, 0, 0, 1_500_000_004)
    assert meta("shared/deep/suid") == (0o4755, 1000, 1001, MTIME)
    assert os.lstat(dest / "shared/deep/again").st_ino == os.lstat(dest / "shared/deep/suid").st_ino
    assert os.lstat(dest / "shared/deep/suid").st_nlink == 2
    assert (dest / "shared/deep/suid").read_bytes() == file_data
    assert stat.S_IMODE(os.lstat(dest / "implied").st_mode) == 0o755 & ~_umask()
    assert meta("implied/leaf") == (0o600, 0, 0, MTIME)
    assert os.readlink(dest / "link") == "/shared/deep/suid"
    assert meta("link")[1:] == (7, 8, 1_300_000_000)
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode) and meta("fifo") == (0o620, 0, 0, MTIME)
    st = os.lstat(dest / "null")
    assert stat.S_ISCHR(st.st_mode) and (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    assert meta("null") == (0o666, 0, 0, MTIME)
    for name in ("gone", "lower"):
        st = os.lstat(dest / name)
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and (st.st_uid, st.st_gid) == (0, 0)
    assert not (dest / ".wh.gone").exists() and not (dest / ".wh..wh.plnk").exists()
    assert os.getxattr(dest / "opq", OPAQUE_XATTR) == b"y"
    assert not (dest / "opq/.wh..wh..opq").exists()
    assert meta("opq") == (0o755, 0, 0, 1_500_000_005)
    assert os.getxattr(dest / "x", "trusted.t") == b"v"
    assert os.getxattr(dest / "xd", "trusted.d") == b"dv"
    assert meta("xd")[3] == 1_500_000_006
    try:
        assert os.getxattr(dest / "x", "user.note") == b"hi"
    except OSError as e:
        if e.errno != errno.ENOTSUP:
            raise
    replayed = b"".join(tarsplit.replay(dest.parent, result.diff_id))
    assert replayed == data


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- safefs


def test_safefs_open_dir(tmp_path, host):
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "f").write_bytes(b"")
    (root / "l").symlink_to(host)
    (root / "a" / "l").symlink_to("b")
    rfd = safefs.open_root(root)
    try:
        fd = safefs.open_dir(rfd, "a/b")
        assert os.path.samestat(os.fstat(fd), os.stat(root / "a" / "b"))
        os.close(fd)
        for rel, err in [("l", errno.ELOOP), ("l/sub", errno.ELOOP), ("a/l", errno.ELOOP), ("f", errno.ENOTDIR)]:
            with pytest.raises(OSError) as info:
                safefs.open_dir(rfd, rel, create=True)
            assert info.value.errno == err
        with pytest.raises(FileNotFoundError):
            safefs.open_dir(rfd, "new/dir")
        os.close(safefs.open_dir(rfd, "new/dir", create=True, mode=0o700))
        assert stat.S_IMODE(os.stat(root / "new" / "dir").st_mode) == 0o700 & ~_umask()
        with pytest.raises(ValueError):
            safefs.open_dir(rfd, "a/../..")
        cache = safefs.DirCache(rfd)
        assert cache.open("a/b") == cache.open("a/b")
        assert cache.open("") == rfd
        cache.close()
    finally:
        os.close(rfd)
    with pytest.raises(OSError):
        safefs.open_root(root / "l")
    assert not (host / "sub" / "new").exists()


def test_safefs_entry_operations(tmp_path, host):
    root = tmp_path / "root"
    root.mkdir()
    (root / "l").symlink_to(host)
    os.mkfifo(root / "p", 0o600)
    before = snapshot(host)
    rfd = safefs.open_root(root)
    try:
        safefs.chmod_at(rfd, "p", 0o4640)
        assert stat.S_IMODE(os.lstat(root / "p").st_mode) == 0o4640
        with pytest.raises(OSError):
            safefs.chmod_at(rfd, "l", 0o4777)
        safefs.rmtree_at(rfd, "l")
        assert not (root / "l").exists() and snapshot(host) == before
    finally:
        os.close(rfd)


def test_names_that_only_start_with_dots_stay_and_overlong_paths_are_refused(tmp_path: Path) -> None:
    def layer(*names: str) -> io.BytesIO:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            for n in names:
                ti = tarfile.TarInfo(n)
                ti.size = 2
                tf.addfile(ti, io.BytesIO(b"ok"))
        buf.seek(0)
        return buf

    (tmp_path / "a").mkdir()
    extract_layer(layer("..data", "...x"), tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["...x", "..data"]
    (tmp_path / "b").mkdir()
    deep = "/".join(["d" * 200] * 21)
    with pytest.raises(InvalidArgument, match="is longer than 4095 bytes"):
        extract_layer(layer(deep), tmp_path / "b")


def test_overlay_xattrs_in_a_layer_are_dropped(tmp_path: Path) -> None:
    """trusted.overlay.redirect and friends would make overlayfs show another path than the layer's."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        ti = tarfile.TarInfo("alias")
        ti.type = tarfile.DIRTYPE
        ti.pax_headers = {"SCHILY.xattr.trusted.overlay.redirect": "/real", "SCHILY.xattr.trusted.overlay.opaque": "y",
                          "SCHILY.xattr.user.kept": "yes"}
        tf.addfile(ti)
    buf.seek(0)
    (tmp_path / "d").mkdir()
    extract_layer(buf, tmp_path / "d")
    names = os.listxattr(tmp_path / "d" / "alias")
    assert "user.kept" in names
    assert not [n for n in names if n.startswith("trusted.overlay.")]
