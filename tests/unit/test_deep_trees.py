"""Trees thousands of levels deep (a hostile layer, or a container's `mkdir` in a loop) against every
walk of the daemon: removal, size, volume copy-up, diff and commit, a layer's tar rebuilt, and the
stores' start-up cleanup. Python 3.11's shutil.rmtree and os.walk recurse once per level and raise
RecursionError at ~1,000; nothing here may, nor hold one fd per level, nor answer with Python text."""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import resource
import stat
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from servin.core.store import ContainerStore
from servin.core.volumes import VolumeStore, copy_image_content, tree_size
from servin import safefs
from servin.images import diff, tarsplit
from servin.images.service import ImageService

pytestmark = pytest.mark.unit

DEEP = 3000  # "d/" * 3000: 6,000 bytes, more than PATH_MAX; no absolute path can make it
MID = 1500  # deeper than the recursion limit, within PATH_MAX below a short prefix


@pytest.fixture(autouse=True)
def _remove_deep_trees(tmp_path: Path) -> Iterator[None]:
    """pytest's own clean-up of old temp dirs is shutil.rmtree: leave it nothing deep."""
    yield
    for p in tmp_path.iterdir():
        safefs.remove_tree(p, ignore_errors=True)


def deep(base: Path, levels: int, *, name: str = "d", file: bytes | None = None) -> None:
    """``base/d/d/.../d`` (``levels`` directories), made relative to directory fds; ``file`` puts a
    file ``f`` with that content in every level."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(levels):
            os.mkdir(name, dir_fd=fd)
            sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = sub
            if file is not None:
                f = os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                os.write(f, file)
                os.close(f)
    finally:
        os.close(fd)


def depth_of(base: Path, name: str = "d") -> int:
    """How many levels of ``name`` there are below ``base`` (walked with fds)."""
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
    n = 0
    try:
        while True:
            try:
                sub = os.open(name, safefs.DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                return n
            os.close(fd)
            fd, n = sub, n + 1
    finally:
        os.close(fd)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@contextmanager
def few_fds(extra: int = 48) -> Iterator[None]:
    """RLIMIT_NOFILE just above the fds open now: a walk holding one fd per level fails (EMFILE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# ---------------------------------------------------------------------------- removal


def test_remove_tree_of_any_depth_with_few_fds(tmp_path: Path) -> None:
    top = tmp_path / "top"
    top.mkdir()
    deep(top, DEEP, file=b"x")
    before = open_fds()
    with few_fds():
        safefs.remove_tree(top)
    assert not top.exists()
    assert open_fds() == before


def test_removal_never_follows_a_symlink(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    (outside / "keep" / "file").write_text("keep")
    top = tmp_path / "top"
    top.mkdir()
    deep(top, 1200)
    fd = safefs.open_dir(safefs.open_root(top), "/".join(["d"] * 1200))
    try:
        os.symlink(str(outside), "link", dir_fd=fd)
        os.symlink(str(outside / "keep"), "dirlink", dir_fd=fd)
    finally:
        os.close(fd)
    os.symlink(str(outside), top / "toplink")
    safefs.remove_tree(top)
    assert not top.exists()
    assert (outside / "keep" / "file").read_text() == "keep"


def test_rmtree_at_a_symlink_removes_the_link_only(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "f").write_text("x")
    os.symlink("target", tmp_path / "link")
    fd = safefs.open_root(tmp_path)
    try:
        safefs.rmtree_at(fd, "link")
        safefs.rmtree_at(fd, "missing")  # no error
    finally:
        os.close(fd)
    assert not os.path.lexists(tmp_path / "link")
    assert (tmp_path / "target" / "f").read_text() == "x"


def test_remove_at_a_deep_directory(tmp_path: Path) -> None:
    """What the layer extractor calls when a later entry replaces a directory."""
    deep(tmp_path, DEEP)
    fd = safefs.open_root(tmp_path)
    try:
        safefs.rmtree_at(fd, "d")
    finally:
        os.close(fd)
    assert list(tmp_path.iterdir()) == []


def test_removal_goes_on_past_what_it_cannot_remove_then_raises(tmp_path: Path, monkeypatch) -> None:
    top = tmp_path / "top"
    (top / "a").mkdir(parents=True)
    (top / "a" / "stuck").write_text("x")
    (top / "b").mkdir()
    deep(top / "b", 1500)
    real_unlink = os.unlink

    def unlink(name, *, dir_fd=None):
        if name == "stuck":
            raise PermissionError(errno.EPERM, "Operation not permitted", name)
        real_unlink(name, dir_fd=dir_fd)

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(PermissionError):
        safefs.remove_tree(top)
    assert sorted(p.name for p in top.iterdir()) == ["a"]  # b went, deep as it was
    safefs.remove_tree(top, ignore_errors=True)  # no error
    monkeypatch.undo()
    safefs.remove_tree(top)
    assert not top.exists()


# ---------------------------------------------------------------------------- DirStack


def test_dir_stack_comes_back_up_through_dotdot_with_bounded_fds(tmp_path: Path) -> None:
    deep(tmp_path, 200)
    root = safefs.open_root(tmp_path)
    walk = safefs.DirStack(root, keep=4)
    try:
        before = open_fds()
        ids = []
        for _ in range(200):
            st = walk.push("d")
            ids.append((st.st_dev, st.st_ino))
            assert open_fds() <= before + 6
        while walk.depth > 1:
            walk.pop()
            st = os.fstat(walk.fd)
            assert (st.st_dev, st.st_ino) == ids[walk.depth - 1]
        walk.pop()
        assert walk.fd == root
    finally:
        walk.close()
        os.close(root)


def test_dir_stack_walks_again_by_name_when_a_level_moved(tmp_path: Path) -> None:
    """A directory moved during the walk: '..' leads elsewhere, so the level is reached again by
    name from the nearest open level; when the name leads to another directory, the walk stops
    (ESTALE) rather than go on anywhere else."""
    (tmp_path / "a" / "b" / "c" / "e").mkdir(parents=True)
    root = safefs.open_root(tmp_path)
    try:
        walk = safefs.DirStack(root, keep=1)
        try:
            a = walk.push("a")
            for name in ("b", "c", "e"):
                walk.push(name)  # a's fd is closed by now
            os.rename(tmp_path / "a" / "b", tmp_path / "b2")  # b's '..' is the root now
            for _ in range(3):
                walk.pop()  # the last: '..' of b is the root, not a; a again by name
            st = os.fstat(walk.fd)
            assert (st.st_dev, st.st_ino) == (a.st_dev, a.st_ino)
        finally:
            walk.close()

        os.rename(tmp_path / "b2", tmp_path / "a" / "b")
        walk = safefs.DirStack(root, keep=1)
        try:
            for name in ("a", "b", "c", "e"):
                walk.push(name)
            os.rename(tmp_path / "a", tmp_path / "gone")
            os.rename(tmp_path / "gone" / "b", tmp_path / "b2")
            (tmp_path / "a").mkdir()  # another directory where a was
            walk.pop()
            walk.pop()
            with pytest.raises(OSError) as exc:
                walk.pop()
            assert exc.value.errno == errno.ESTALE
        finally:
            walk.close()
    finally:
        os.close(root)


# ---------------------------------------------------------------------------- sizes


def test_tree_size_at_any_depth_with_few_fds(tmp_path: Path) -> None:
    deep(tmp_path, DEEP, file=b"12345")
    os.symlink("/nonexistent", tmp_path / "link")
    with few_fds():
        assert tree_size(tmp_path) == DEEP * 5 + len("/nonexistent")
    assert tree_size(tmp_path / "missing") == 0


# ---------------------------------------------------------------------------- volume copy-up


def test_copy_up_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    layer = tmp_path / "l"
    (layer / "vol").mkdir(parents=True)
    deep(layer / "vol", MID, file=b"ab")
    dest = tmp_path / "v"
    dest.mkdir()
    with few_fds():
        copy_image_content([layer], "/vol", dest)
    assert depth_of(dest) == MID
    assert tree_size(dest) == MID * 2
    safefs.remove_tree(dest)


def test_copy_up_of_a_tree_no_host_path_can_reach_is_a_clean_error(tmp_path: Path) -> None:
    layer = tmp_path / "l"
    (layer / "vol").mkdir(parents=True)
    deep(layer / "vol", DEEP)
    dest = tmp_path / "v"
    dest.mkdir()
    with pytest.raises(safefs.TooDeep, match="copying the image's /vol into the volume: directory tree too deep"):
        copy_image_content([layer], "/vol", dest)


# ---------------------------------------------------------------------------- diff and commit


def test_diff_and_commit_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    deep(upper, MID, file=b"x")
    with few_fds():
        changes = diff.changes(upper, [lower])
    assert len(changes) == 2 * MID
    assert changes[0] == diff.Change("/d", diff.Kind.ADDED)
    assert changes[MID] == diff.Change("/d" * MID + "/f", diff.Kind.ADDED)  # depth first
    assert changes[-1] == diff.Change("/d/f", diff.Kind.ADDED)
    buf = io.BytesIO()
    with few_fds():
        assert diff.write_layer(upper, [lower], buf) == 2 * MID
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        names = tf.getnames()
    assert names[MID] == "/".join(["d"] * MID) + "/f" and names[-1] == "d/f"


def test_diff_of_an_existing_deep_tree_modified_at_the_bottom(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    deep(lower, 1200, file=b"x")
    deep(upper, 1200)
    fd = safefs.open_dir(safefs.open_root(upper), "/".join(["d"] * 1200))
    try:
        os.mknod("f", stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=fd)  # deleted at the bottom
    finally:
        os.close(fd)
    changes = diff.changes(upper, [lower])
    assert changes[-1] == diff.Change("/d" * 1200 + "/f", diff.Kind.DELETED)
    assert [c.kind for c in changes[:-1]] == [diff.Kind.MODIFIED] * 1200


def test_diff_and_commit_of_a_tree_past_path_max_are_clean_errors(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    lower.mkdir()
    upper.mkdir()
    deep(upper, DEEP)
    with pytest.raises(safefs.TooDeep, match="reading the container's changes: directory tree too deep"):
        diff.changes(upper, [lower])
    with pytest.raises(safefs.TooDeep, match="writing the container's layer: directory tree too deep"):
        diff.write_layer(upper, [lower], io.BytesIO())
    assert open_fds() < 100


# ---------------------------------------------------------------------------- layer tars


def test_regenerate_at_any_depth(tmp_path: Path) -> None:
    deep(tmp_path, DEEP, file=b"z")
    buf = io.BytesIO()
    with few_fds():
        tarsplit.regenerate(tmp_path, buf)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        members = tf.getmembers()
    assert len(members) == 2 * DEEP
    assert members[DEEP].name == "/".join(["d"] * DEEP) + "/f" and members[DEEP].size == 1
    assert members[-1].name == "d/f"


def _deep_layer(levels: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for i in range(1, levels + 1):
            ti = tarfile.TarInfo("d/" * i)
            ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1_700_000_000
            tf.addfile(ti)
        ti = tarfile.TarInfo("d/" * levels + "f")
        ti.size, ti.mode, ti.mtime = 4, 0o644, 1_700_000_000
        tf.addfile(ti, io.BytesIO(b"deep"))
    return buf.getvalue()


def test_extracting_a_deep_layer_opens_each_directory_a_few_times(tmp_path: Path, monkeypatch) -> None:
    """The extractor reaches each entry's directory from the last one (safefs.DirCache), not from
    the layer's root: a chain 2,000 deep costs a few thousand opens, not millions (CPU for minutes
    per `docker load`)."""
    real_open = os.open
    calls = 0

    def counting_open(*args, **kwargs):
        nonlocal calls
        calls += 1
        return real_open(*args, **kwargs)

    store = ImageService(tmp_path / "store")
    monkeypatch.setattr(os, "open", counting_open)
    with few_fds():
        store.ingest_layer(io.BytesIO(_deep_layer(2000)), None)
    monkeypatch.undo()
    assert calls < 10 * 2000


def test_a_layer_path_near_path_max_is_stored_and_replayed(tmp_path: Path) -> None:
    """A layer may hold paths up to PATH_MAX-1 bytes; below the store's prefix the host cannot open
    them whole: the tar is replayed through directory fds."""
    tar = _deep_layer(2040)  # "d/" * 2040 + "f": 4,081 bytes
    store = ImageService(tmp_path / "store")
    diff_id = store.ingest_layer(io.BytesIO(tar), None)
    assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    with store.layer_tar(diff_id) as f:
        assert f.read() == tar


# ---------------------------------------------------------------------------- the stores at start


def test_image_store_opens_with_a_deep_leftover_tmp_layer(tmp_path: Path) -> None:
    root = tmp_path / "store"
    ImageService(root)
    leftover = root / "layers" / ".tmp-0123"
    (leftover / "diff").mkdir(parents=True)
    deep(leftover / "diff", DEEP)
    doomed = root / "layers" / ".del-abcd-0123"
    doomed.mkdir()
    deep(doomed, DEEP)
    ImageService(root)
    assert sorted(p.name for p in (root / "layers").iterdir()) == []


def test_a_failed_load_of_a_deep_layer_leaves_nothing(tmp_path: Path) -> None:
    store = ImageService(tmp_path / "store")
    with pytest.raises(Exception, match="invalid diffID"):
        store.layers.ensure(io.BytesIO(_deep_layer(2000)), "sha256:" + "0" * 64)
    assert list((tmp_path / "store" / "layers").iterdir()) == []


def test_stores_open_when_a_leftover_cannot_be_removed(tmp_path: Path, monkeypatch, caplog) -> None:
    """Start-up cleanup is never fatal: what it cannot remove is logged and left."""
    root = tmp_path / "data"
    (root / "image" / "layers" / ".tmp-x").mkdir(parents=True)
    (root / "containers" / ("c" * 64)).mkdir(parents=True)
    (root / "volumes" / "halfmade").mkdir(parents=True)

    def busy(path, *, ignore_errors=False):
        if not ignore_errors:
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))

    monkeypatch.setattr(safefs, "remove_tree", busy)
    with caplog.at_level(logging.WARNING):
        ImageService(root / "image")
        assert ContainerStore(root / "containers").all() == []
        assert VolumeStore(root / "volumes").list() == []
    assert caplog.text.count("Device or resource busy") == 3


def test_container_and_volume_removal_of_deep_trees(tmp_path: Path) -> None:
    from tests.unit.test_container_store import make  # noqa: PLC0415

    store = ContainerStore(tmp_path / "containers")
    c = make()
    store.save(c).result()
    (store.dir(c.id) / "upper").mkdir()
    deep(store.dir(c.id) / "upper", DEEP, file=b"x")
    assert tree_size(store.dir(c.id) / "upper") == DEEP
    store.delete(c.id).result()
    assert not store.dir(c.id).exists()
    # a removal that crashed half way: the next start removes what is left
    leftover = tmp_path / "containers" / ("e" * 64)
    leftover.mkdir()
    deep(leftover, DEEP)
    ContainerStore(tmp_path / "containers")
    assert not leftover.exists()

    volumes = VolumeStore(tmp_path / "volumes")
    vol, _ = volumes.create("deep")
    deep(volumes.data_dir("deep"), DEEP, file=b"yy")
    assert volumes.size("deep") == 2 * DEEP
    volumes.remove("deep", users=[])
    assert not (tmp_path / "volumes" / "deep").exists()
