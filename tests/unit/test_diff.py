"""docker diff and docker commit without a daemon: changes of an upper dir over lower layers (their
kinds and order), the upper dir as a layer tar (whiteouts converted), the commit config merge,
and ImageService.commit_layer."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from servin.images import diff
from servin.images.commit import commit_config, merge
from servin.images.diff import Change
from servin.images.layers import OPAQUE_XATTR
from servin.images.service import ImageService

pytestmark = pytest.mark.unit
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (whiteout devices, trusted.* xattrs)")

T0 = 1_600_000_000


def tree(root: Path, spec: dict[str, object]) -> Path:
    """dir/ entries end with "/", strings are files, ("link", target) symlinks."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in spec.items():
        p = root / name.rstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            p.mkdir(exist_ok=True)
        elif isinstance(value, tuple):
            os.symlink(value[1], p)
        else:
            p.write_text(str(value))
    for p in sorted(root.rglob("*"), key=lambda x: -len(x.parts)):
        os.utime(p, (T0, T0), follow_symlinks=False)
    return root


def whiteout(path: Path) -> None:
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


def kinds(changes: list[Change]) -> list[str]:
    return [f"{'CAD'[c.kind]} {c.path}" for c in changes]


def test_added_modified_and_parent_first_in_walk_order(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/": "", "etc/passwd": "root", "etc-x/": "", "tmp/": "", "keep": "k"})
    upper = tree(tmp_path / "upper", {"etc/": "", "etc/passwd": "root+more", "etc-x/": "", "etc-x/new": "n",
                                      "tmp/": "", "tmp/a/": "", "tmp/a/b": "b", "z": "z"})
    os.utime(upper / "etc" / "passwd", (T0 + 5, T0 + 5))
    assert kinds(diff.changes(upper, [lower])) == [
        "C /etc", "C /etc/passwd", "C /etc-x", "A /etc-x/new", "C /tmp", "A /tmp/a", "A /tmp/a/b", "A /z",
    ]


def test_copied_up_unchanged_entries_are_not_changes(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/": "", "etc/passwd": "root"})
    upper = tree(tmp_path / "upper", {"etc/": "", "etc/passwd": "root"})  # same size, mode, mtime
    assert diff.changes(upper, [lower]) == []


def test_mode_change_on_a_directory_is_a_change(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"srv/": ""})
    upper = tree(tmp_path / "upper", {"srv/": ""})
    os.chmod(upper / "srv", 0o700)
    assert kinds(diff.changes(upper, [lower])) == ["C /srv"]


def test_runtime_mount_points_are_not_changes(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/": "", "etc/passwd": "x", "bin/": ""})
    upper = tree(tmp_path / "upper", {"etc/": "", "etc/hosts": "", "etc/hostname": "", "etc/resolv.conf": "",
                                      "proc/": "", "dev/": "", "sys/": ""})
    os.utime(upper / "etc", (T0 + 9, T0 + 9))  # creating the mount points touched /etc
    assert diff.changes(upper, [lower]) == []
    # an image without /etc: the runtime's /etc is not an addition either
    bare = tree(tmp_path / "bare", {"bin/": ""})
    assert diff.changes(upper, [bare]) == []


def test_layers_are_looked_up_top_first(tmp_path: Path) -> None:
    base = tree(tmp_path / "base", {"a": "base", "d/": "", "d/x": "x"})
    top = tree(tmp_path / "top", {"a": "top!!"})
    upper = tree(tmp_path / "upper", {"a": "top!!"})  # equal to the top layer's copy
    assert diff.changes(upper, [top, base]) == []


@root_only
def test_whiteouts_and_opaque_dirs_are_deletions(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/": "", "etc/group": "g", "etc/passwd": "p",
                                      "opt/": "", "opt/one": "1", "opt/two": "2", "gone/": "", "gone/f": "f"})
    upper = tree(tmp_path / "upper", {"etc/": "", "opt/": "", "opt/two": "2"})
    whiteout(upper / "etc" / "group")
    whiteout(upper / "gone")
    os.setxattr(upper / "opt", OPAQUE_XATTR, b"y")
    os.utime(upper / "opt" / "two", (T0, T0))
    assert kinds(diff.changes(upper, [lower])) == [
        "C /etc", "D /etc/group", "D /gone", "C /opt", "D /opt/one",
    ]


@root_only
def test_layer_tar_converts_whiteouts_and_skips_mount_points(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"etc/": "", "etc/group": "g", "opt/": "", "opt/one": "1"})
    upper = tree(tmp_path / "upper", {"etc/": "", "etc/hosts": "", "opt/": "", "opt/new": "n", "x": "x"})
    whiteout(upper / "etc" / "group")
    os.setxattr(upper / "opt", OPAQUE_XATTR, b"y")
    buf = io.BytesIO()
    assert diff.write_layer(upper, [lower], buf) == 6
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tf:
        members = [(m.name, m.type, m.size) for m in tf.getmembers()]
        opq = tf.getmember("opt/.wh..wh..opq")
        assert "SCHILY.xattr." + OPAQUE_XATTR not in tf.getmember("opt").pax_headers
    assert members == [
        ("etc", tarfile.DIRTYPE, 0), ("etc/.wh.group", tarfile.REGTYPE, 0),
        ("opt", tarfile.DIRTYPE, 0), ("opt/.wh..wh..opq", tarfile.REGTYPE, 0), ("opt/new", tarfile.REGTYPE, 1),
        ("x", tarfile.REGTYPE, 1),
    ]
    assert opq.mode == 0o755


def test_empty_upper_is_an_empty_layer(tmp_path: Path) -> None:
    lower = tree(tmp_path / "lower", {"bin/": ""})
    upper = tree(tmp_path / "upper", {})
    assert diff.write_layer(upper, [lower], io.BytesIO()) == 0


# ---------------------------------------------------------------------------- commit config


CONTAINER = {
    "Hostname": "abc", "User": "nobody", "Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"], "Image": "busybox",
    "WorkingDir": "/w", "Entrypoint": None, "Labels": {"l": "1"}, "ExposedPorts": {"80/tcp": {}},
    "Volumes": None,
}


def test_commit_config_applies_changes_then_merges_like_dockerd() -> None:
    cfg = commit_config(CONTAINER, ['CMD ["cat", "/x"]', "ENV A=2 B=3", "LABEL m=2", "EXPOSE 443"])
    assert cfg["Cmd"] == ["cat", "/x"]
    assert cfg["Env"] == ["PATH=/bin", "A=2", "B=3"]
    assert cfg["Labels"] == {"l": "1", "m": "2"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "443/tcp": {}}
    assert cfg["User"] == "nobody" and cfg["WorkingDir"] == "/w" and cfg["Hostname"] == "abc"


def test_merge_fills_what_the_request_config_leaves_unset() -> None:
    out = merge({"Env": ["A=9"], "Entrypoint": ["/bin/x"]}, CONTAINER)
    assert out["Env"] == ["A=9", "PATH=/bin"]
    assert out.get("Cmd") is None  # an entrypoint was given: the container's Cmd is not inherited
    out = merge({}, CONTAINER)
    assert out["Cmd"] == ["sh"] and out["User"] == "nobody" and out["ExposedPorts"] == {"80/tcp": {}}


# ---------------------------------------------------------------------------- ImageService.commit_layer


def _layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def test_commit_layer_makes_a_child_image(tmp_path: Path) -> None:
    store = ImageService(tmp_path / "store")
    (tmp_path / "base.tar").write_bytes(_layer({"a": b"a"}))
    parent = store.import_tarball(tmp_path / "base.tar", repo="base", tag=None, changes=[], message="")
    (tmp_path / "new.tar").write_bytes(_layer({"b": b"b"}))
    child = store.commit_layer(parent.id, tmp_path / "new.tar", config={"Cmd": ["cat", "/b"]},
                               container_config={"Cmd": ["sh", "-c", "touch b"]}, container_id="c" * 64,
                               comment="msg", author="me", repo="child", tag="v1")
    assert child.parent == parent.id
    assert child.repo_tags == ("child:v1",)
    assert child.diff_ids[:1] == parent.diff_ids and len(child.diff_ids) == 2
    assert child.author == "me" and child.container == "c" * 64
    assert child.config["config"] == {"Cmd": ["cat", "/b"]}
    assert child.config["history"][-1]["comment"] == "msg"
    assert child.config["history"][-1]["created_by"] == "sh -c touch b"
    assert [p.parent.name for p in store.layer_dirs(child.id)][0] == parent.diff_ids[0][7:]
    # no changes: dockerd's empty layer, recorded in the history only
    same = store.commit_layer(child.id, None, config={}, container_config={}, container_id="d" * 64)
    assert same.diff_ids == child.diff_ids
    assert same.config["history"][-1]["empty_layer"] is True
    # the new image survives a reopen
    assert ImageService(tmp_path / "store").get("child:v1").parent == parent.id


def test_the_lower_view_stops_at_a_higher_layers_whiteout_or_file(tmp_path: Path) -> None:
    from servin.images import union

    top, mid, bottom = tmp_path / "top", tmp_path / "mid", tmp_path / "bottom"
    for d in (top, mid, bottom / "etc", bottom / "srv"):
        d.mkdir(parents=True)
    (bottom / "etc" / "hosts").write_text("old\n")
    (bottom / "srv" / "x").write_text("x\n")
    os.mknod(top / "etc", stat.S_IFCHR | 0o600, os.makedev(0, 0))  # etc whited out above
    (mid / "srv").write_text("a file over the directory\n")
    layers = [top, mid, bottom]  # what diff and commit compare the upper dir with
    assert union.entry(layers, ["etc", "hosts"]) is None
    assert union.entry(layers, ["srv", "x"]) is None
    assert set(union.listdir(union.root(layers))) == {"srv"}
