import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from servin.errors import Conflict, InvalidArgument, NotFound
from servin.images.model import DeleteItem
from servin.images.seed import write_busybox_archive
from servin.images.layer_store import chain_ids
from servin.images.service import ImageService

pytestmark = pytest.mark.unit

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted.* xattrs)")


# ---------------------------------------------------------------------- archive builders


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_tar(entries, *, fmt=tarfile.PAX_FORMAT) -> bytes:
    """entries: (name, kind, extra) where kind in file/dir/symlink/hardlink/fifo/chr."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for entry in entries:
            name, kind = entry[0], entry[1]
            opts = entry[2] if len(entry) > 2 else {}
            ti = tarfile.TarInfo(name)
            ti.mtime = opts.get("mtime", 1_600_000_000)
            ti.uid = opts.get("uid", 0)
            ti.gid = opts.get("gid", 0)
            ti.mode = opts.get("mode", 0o755 if kind == "dir" else 0o644)
            if "pax" in opts:
                ti.pax_headers = opts["pax"]
            data = None
            if kind == "file":
                data = opts.get("data", b"")
                ti.size = len(data)
            elif kind == "dir":
                ti.type = tarfile.DIRTYPE
            elif kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = opts["target"]
            elif kind == "hardlink":
                ti.type = tarfile.LNKTYPE
                ti.linkname = opts["target"]
            elif kind == "fifo":
                ti.type = tarfile.FIFOTYPE
            elif kind == "chr":
                ti.type = tarfile.CHRTYPE
                ti.devmajor, ti.devminor = opts["dev"]
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def make_config(layers: list[bytes], **extra) -> bytes:
    cfg = {
        "architecture": "amd64",
        "config": {"Cmd": ["sh"], "Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "created": "2023-05-06T07:08:09.123456789Z",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [_sha(layer) for layer in layers]},
    }
    cfg.update(extra)
    return json.dumps(cfg).encode()


def write_tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    return path


def docker_archive(path: Path, layers: list[bytes], tags: list[str], *, config: bytes | None = None) -> str:
    config = config or make_config(layers)
    cid = _sha(config)[7:]
    files = {f"{cid}.json": config}
    layer_paths = []
    for i, layer in enumerate(layers):
        files[f"l{i}/layer.tar"] = layer
        files[f"l{i}/VERSION"] = b"1.0"
        layer_paths.append(f"l{i}/layer.tar")
    files["manifest.json"] = json.dumps(
        [{"Config": f"{cid}.json", "RepoTags": tags, "Layers": layer_paths}]
    ).encode()
    write_tar(path, files)
    return "sha256:" + cid


def oci_archive(
    path: Path,
    layers: list[bytes],
    annotations: dict[str, str],
    *,
    nested=False,
    gz=True,
    config: bytes | None = None,
) -> str:
    config = config or make_config(layers)
    blobs = {_sha(config): config}
    descs = []
    for layer in layers:
        blob = gzip.compress(layer, mtime=0) if gz else layer
        blobs[_sha(blob)] = blob
        descs.append(
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(blob), "size": len(blob)}
        )
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": _sha(config),
                "size": len(config),
            },
            "layers": descs,
        }
    ).encode()
    blobs[_sha(manifest)] = manifest
    top = {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": _sha(manifest),
        "size": len(manifest),
        "platform": {"architecture": "amd64", "os": "linux"},
    }
    if nested:
        inner = json.dumps(
            {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [top]}
        ).encode()
        blobs[_sha(inner)] = inner
        top = {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": _sha(inner), "size": len(inner)}
    top["annotations"] = annotations
    files = {f"blobs/sha256/{d[7:]}": b for d, b in blobs.items()}
    files["oci-layout"] = b'{"imageLayoutVersion":"1.0.0"}'
    files["index.json"] = json.dumps({"schemaVersion": 2, "manifests": [top]}).encode()
    write_tar(path, files)
    return _sha(config)


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def seed_archive(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


@pytest.fixture
def store(tmp_path) -> ImageService:
    return ImageService(tmp_path / "images")


@pytest.fixture
def busybox(store, seed_archive) -> str:
    assert store.load_archive(seed_archive) == ["Loaded image: busybox:latest"]
    return store.get("busybox").id


def no_users(_image_id):
    return []


LAYER_A = make_tar([("etc", "dir"), ("etc/hostname", "file", {"data": b"a\n"})])
LAYER_B = make_tar([("opt", "dir"), ("opt/b", "file", {"data": b"bbbb"})])


# ---------------------------------------------------------------------- seed + docker load


def test_seed_is_deterministic(tmp_path, seed_archive):
    again = tmp_path / "again.tar"
    write_busybox_archive(again)
    assert again.read_bytes() == seed_archive.read_bytes()


def test_load_seed(store, busybox, seed_archive):
    img = store.get("busybox:latest")
    assert img.id == busybox
    assert img.repo_tags == ("busybox:latest",)
    assert img.cmd == ("sh",)
    assert img.env == ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    assert img.os == "linux" and img.architecture
    assert img.size > 100_000
    assert len(img.diff_ids) == 1
    assert img.config["rootfs"]["diff_ids"] == list(img.diff_ids)
    diff = store.layer_dirs(busybox)[0]
    assert (diff / "bin" / "busybox").stat().st_mode & 0o755 == 0o755
    assert os.readlink(diff / "bin" / "sh") == "/bin/busybox"
    assert os.readlink(diff / "usr" / "bin" / "env") == "/bin/busybox"
    assert stat.S_IMODE((diff / "tmp").stat().st_mode) == 0o1777
    assert (diff / "tmp").stat().st_mtime == 1704067200
    passwd = store.read_file(busybox, "/etc/passwd")
    assert passwd.startswith(b"root:x:0:0:root:/root:/bin/sh\n")
    assert b"nobody:x:65534:65534:" in passwd
    group = store.read_file("busybox", "/etc/group")
    assert b"nogroup:x:65534:" in group and b"users:x:100:" in group
    assert store.read_file(busybox, "/bin/sh")[:4] == b"\x7fELF"  # through the symlink
    assert store.read_file(busybox, "/etc/nope") is None
    # a second load is a no-op with the same answer
    assert store.load_archive(seed_archive) == ["Loaded image: busybox:latest"]
    assert len(store.list()) == 1


def test_get_forms(store, busybox):
    hexid = busybox[7:]
    for form in (
        busybox,
        hexid,
        hexid[:12],
        hexid[:1],
        "sha256:" + hexid[:5],
        "busybox",
        "docker.io/library/busybox:latest",
        "library/busybox",
    ):
        assert store.get(form).id == busybox, form
    with pytest.raises(NotFound, match=r"^No such image: foo:latest$"):
        store.get("foo")
    with pytest.raises(NotFound, match=r"^No such image: busybox:1$"):
        store.get("busybox:1")
    with pytest.raises(NotFound, match=r"^No such image: sha256:" + "0" * 64 + "$"):
        store.get("sha256:" + "0" * 64)
    with pytest.raises(InvalidArgument, match="repository name must be lowercase"):
        store.get("BusyBox")


def test_ambiguous_prefix_is_not_found(store, tmp_path):
    ids = set()
    for i in range(20):
        cfg = make_config([LAYER_A], comment=f"n{i}")
        docker_archive(tmp_path / f"a{i}.tar", [LAYER_A], [], config=cfg)
        ids.add(store.load_archive(tmp_path / f"a{i}.tar")[0].split(": ")[1])
    first_chars = [i[7] for i in ids]
    dup = next(c for c in first_chars if first_chars.count(c) > 1)
    with pytest.raises(NotFound):
        store.get(dup)


def test_load_docker_archive_untagged_and_retag(store, tmp_path):
    image_id = docker_archive(tmp_path / "a.tar", [LAYER_A, LAYER_B], [])
    assert store.load_archive(tmp_path / "a.tar") == [f"Loaded image ID: {image_id}"]
    img = store.get(image_id)
    assert img.repo_tags == ()
    assert img.size == 2 + 4
    assert img.created_unix == 1683356889
    dirs = store.layer_dirs(image_id)
    assert [d.parent.name for d in dirs] == [_sha(LAYER_A)[7:], _sha(LAYER_B)[7:]]

    other = docker_archive(tmp_path / "b.tar", [LAYER_A], ["app:1"])
    assert store.load_archive(tmp_path / "b.tar") == ["Loaded image: app:1"]
    moved = docker_archive(tmp_path / "c.tar", [LAYER_B], ["app:1"])
    assert store.load_archive(tmp_path / "c.tar") == [
        f"The image app:1 already exists, renaming the old one with ID {other} to empty string",
        "Loaded image: app:1",
    ]
    assert store.get("app:1").id == moved
    assert store.get(other).repo_tags == ()


def test_load_gzipped_archive_and_gzipped_layers(store, tmp_path):
    plain = tmp_path / "a.tar"
    docker_archive(plain, [gzip.compress(LAYER_A)], ["gz:1"], config=make_config([LAYER_A]))
    gz = tmp_path / "a.tar.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    assert store.load_archive(gz) == ["Loaded image: gz:1"]
    assert store.get("gz:1").diff_ids == (_sha(LAYER_A),)


def test_load_diff_id_mismatch(store, tmp_path):
    bad_cfg = make_config([LAYER_B])  # claims LAYER_B's digest
    docker_archive(tmp_path / "bad.tar", [LAYER_A], ["bad:1"], config=bad_cfg)
    with pytest.raises(InvalidArgument, match="invalid diffID for layer 0"):
        store.load_archive(tmp_path / "bad.tar")
    assert store.list() == []
    assert [p.name for p in (store.root / "layers").iterdir()] == []


def test_load_layer_count_mismatch(store, tmp_path):
    docker_archive(tmp_path / "bad.tar", [LAYER_A], [], config=make_config([LAYER_A, LAYER_B]))
    with pytest.raises(InvalidArgument, match="layers length mismatch"):
        store.load_archive(tmp_path / "bad.tar")


def test_load_not_an_archive(store, tmp_path):
    (tmp_path / "x").write_bytes(b"hello")
    with pytest.raises(InvalidArgument):
        store.load_archive(tmp_path / "x")
    write_tar(tmp_path / "empty.tar", {"foo": b"bar"})
    with pytest.raises(InvalidArgument, match="manifest.json"):
        store.load_archive(tmp_path / "empty.tar")


# ---------------------------------------------------------------------- OCI layout


def test_load_oci_layout(store, tmp_path):
    cid = oci_archive(
        tmp_path / "o.tar",
        [LAYER_A, LAYER_B],
        {"io.containerd.image.name": "docker.io/library/oci:2", "org.opencontainers.image.ref.name": "2"},
    )
    assert store.load_archive(tmp_path / "o.tar") == ["Loaded image: oci:2"]
    img = store.get("oci:2")
    assert img.id == cid
    assert img.diff_ids == (_sha(LAYER_A), _sha(LAYER_B))
    assert store.read_file("oci:2", "/opt/b") == b"bbbb"


def test_load_oci_nested_index_ref_name(store, tmp_path):
    oci_archive(
        tmp_path / "o.tar", [LAYER_A], {"org.opencontainers.image.ref.name": "localhost:5000/x/y:3"}, nested=True
    )
    assert store.load_archive(tmp_path / "o.tar") == ["Loaded image: localhost:5000/x/y:3"]


def test_load_oci_untagged(store, tmp_path):
    cid = oci_archive(tmp_path / "o.tar", [LAYER_A], {"org.opencontainers.image.ref.name": "latest"})
    assert store.load_archive(tmp_path / "o.tar") == [f"Loaded image ID: {cid}"]


def test_load_oci_blob_digest_mismatch(store, tmp_path):
    oci_archive(tmp_path / "o.tar", [LAYER_A], {})
    # rewrite the layer blob under its old name with other content
    with tarfile.open(tmp_path / "o.tar") as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers()}
    name = f"blobs/sha256/{_sha(gzip.compress(LAYER_A, mtime=0))[7:]}"
    files[name] = gzip.compress(LAYER_B, mtime=0)
    write_tar(tmp_path / "bad.tar", files)
    with pytest.raises(InvalidArgument):
        store.load_archive(tmp_path / "bad.tar")
    assert store.list() == []


def test_seed_archive_is_also_an_oci_layout(store, seed_archive, tmp_path):
    with tarfile.open(seed_archive) as tf:
        files = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.isfile()}
    del files["manifest.json"]
    write_tar(tmp_path / "oci.tar", files)
    assert store.load_archive(tmp_path / "oci.tar") == ["Loaded image: busybox:latest"]


# ---------------------------------------------------------------------- import


def test_import_with_changes(store, tmp_path):
    rootfs = tmp_path / "rootfs.tar.gz"
    rootfs.write_bytes(gzip.compress(LAYER_A))
    img = store.import_tarball(
        rootfs,
        repo="imp",
        tag="v1",
        changes=[
            'CMD ["echo", "hi"]',
            "ENTRYPOINT /bin/sh -c",
            'ENV A=1 B="two words"',
            "ENV C three four",
            "WORKDIR /srv",
            "WORKDIR app",
            "USER nobody",
            'LABEL x=y "z z"=w',
            "EXPOSE 80 53/udp",
            "VOLUME /data",
            "STOPSIGNAL SIGINT",
        ],
        message="hello",
    )
    assert img.repo_tags == ("imp:v1",)
    assert img.diff_ids == (_sha(LAYER_A),)
    assert img.comment == "hello"
    assert img.os == "linux" and img.architecture in (
        "amd64",
        "arm64",
        "arm",
        "386",
        "ppc64le",
        "s390x",
        "riscv64",
    )
    assert img.last_tag_time is not None
    cfg = img.run_config
    assert cfg["Cmd"] == ["echo", "hi"]
    assert cfg["Entrypoint"] == ["/bin/sh", "-c", "/bin/sh -c"]
    assert cfg["Env"] == ["A=1", "B=two words", "C=three four"]
    assert cfg["WorkingDir"] == "/srv/app"
    assert cfg["User"] == "nobody"
    assert img.labels == {"x": "y", "z z": "w"}
    assert cfg["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert cfg["Volumes"] == {"/data": {}}
    assert cfg["StopSignal"] == "SIGINT"
    assert img.config["history"][0]["comment"] == "hello"
    assert store.read_file("imp:v1", "/etc/hostname") == b"a\n"
    # the stored config is the exact bytes the id is computed from
    raw = (store.root / "images" / f"{img.id[7:]}.json").read_bytes()
    assert _sha(raw) == img.id


def test_import_shell_cmd_and_defaults(store, tmp_path):
    rootfs = tmp_path / "r.tar"
    rootfs.write_bytes(LAYER_B)
    img = store.import_tarball(rootfs, repo=None, tag=None, changes=["CMD echo $HOME"], message="")
    assert img.repo_tags == ()
    assert img.cmd == ("/bin/sh", "-c", "echo $HOME")
    img2 = store.import_tarball(rootfs, repo="plain", tag=None, changes=[], message="")
    assert img2.repo_tags == ("plain:latest",)


def test_import_rejects_bad_change_and_repo(store, tmp_path):
    rootfs = tmp_path / "r.tar"
    rootfs.write_bytes(LAYER_B)
    with pytest.raises(InvalidArgument, match="^run is not a valid change command$"):
        store.import_tarball(rootfs, repo=None, tag=None, changes=["RUN true"], message="")
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        store.import_tarball(rootfs, repo="Bad", tag=None, changes=[], message="")


# ---------------------------------------------------------------------- tag / list


def test_tag_and_list(store, busybox, tmp_path):
    img = store.tag("busybox", "localhost:5000/mine", "1")
    assert img.repo_tags == ("busybox:latest", "localhost:5000/mine:1")
    assert img.last_tag_time is not None
    store.tag(busybox[7:19], "other", None)
    assert store.get("other").id == busybox
    assert store.get("other:latest").id == busybox
    with pytest.raises(NotFound, match="No such image: nope:latest"):
        store.tag("nope", "x", "1")
    with pytest.raises(InvalidArgument, match="must be lowercase"):
        store.tag("busybox", "Upper", "1")
    with pytest.raises(InvalidArgument, match="invalid tag format"):
        store.tag("busybox", "x", "bad tag")
    with pytest.raises(InvalidArgument, match="refusing to create a tag with a digest reference"):
        store.tag("busybox", "x@sha256:" + "a" * 64, None)

    docker_archive(tmp_path / "a.tar", [LAYER_A], ["app:1"])
    store.load_archive(tmp_path / "a.tar")
    listed = store.list()
    assert [i.id for i in listed] == [busybox, store.get("app:1").id]  # newest first (2024, 2023)

    # everything survives a restart
    again = ImageService(store.root)
    assert again.get("localhost:5000/mine:1").id == busybox
    assert again.get("app:1").repo_tags == ("app:1",)
    assert again.get(busybox).last_tag_time == store.get(busybox).last_tag_time
    assert {i.id for i in again.list()} == {i.id for i in listed}


# ---------------------------------------------------------------------- delete


def users_of(mapping):
    return lambda image_id: mapping.get(image_id, [])


CID = "0123456789abcdef" * 4


def test_delete_one_of_several_tags_untags(store, busybox):
    store.tag("busybox", "second", "1")
    items = store.delete("second:1", force=False, users=no_users)
    assert items == [DeleteItem(untagged="second:1")]
    assert store.get(busybox).repo_tags == ("busybox:latest",)


def test_delete_last_tag_removes_image_and_layers(store, busybox):
    diff_ids = store.get(busybox).diff_ids
    layer_dir = store.layer_dirs(busybox)[0].parent
    items = store.delete("busybox", force=False, users=no_users)
    assert items == [
        DeleteItem(untagged="busybox:latest"),
        DeleteItem(deleted=busybox),
        DeleteItem(deleted=chain_ids(diff_ids)[-1]),
    ]
    assert store.list() == []
    assert not layer_dir.exists()
    assert not (store.root / "images" / f"{busybox[7:]}.json").exists()
    assert ImageService(store.root).list() == []


def test_layers_a_pull_counts_on_survive_rmi_and_prune_until_it_ends(store, busybox):
    (diff_id,) = store.get(busybox).diff_ids
    with store.pinned([diff_id]):
        items = store.delete("busybox", force=False, users=no_users)
        assert DeleteItem(deleted=busybox) in items and len(items) == 2  # the layer is not among them
        assert store.prune_layers() == []
        assert store.has_layer(diff_id)  # the pull can still register its image on it
    assert store.prune_layers() == [diff_id]  # once it is over, an unused layer is collected
    assert not store.has_layer(diff_id)


def test_delete_keeps_shared_layers(store, tmp_path):
    a = docker_archive(tmp_path / "a.tar", [LAYER_A], ["a:1"])
    b = docker_archive(tmp_path / "b.tar", [LAYER_A, LAYER_B], ["b:1"])
    store.load_archive(tmp_path / "a.tar")
    store.load_archive(tmp_path / "b.tar")
    items = store.delete("b:1", force=False, users=no_users)
    assert items == [
        DeleteItem(untagged="b:1"),
        DeleteItem(deleted=b),
        DeleteItem(deleted=chain_ids([_sha(LAYER_A), _sha(LAYER_B)])[1]),
    ]
    assert store.read_file(a, "/etc/hostname") == b"a\n"


def test_delete_by_id_untagged(store, tmp_path):
    image_id = docker_archive(tmp_path / "a.tar", [LAYER_A], [])
    store.load_archive(tmp_path / "a.tar")
    items = store.delete(image_id[7:19], force=False, users=no_users)
    assert items[0] == DeleteItem(deleted=image_id)


def test_delete_by_name_used_by_container(store, busybox):
    users = users_of({busybox: [(CID, False)]})
    with pytest.raises(Conflict) as e:
        store.delete("busybox", force=False, users=users)
    assert e.value.message == (
        'conflict: unable to remove repository reference "busybox" (must force) - '
        f"container 0123456789ab is using its referenced image {busybox[7:19]}"
    )
    # forced: only the tag goes, the image stays (now dangling) for the container
    items = store.delete("busybox", force=True, users=users_of({busybox: [(CID, True)]}))
    assert items == [DeleteItem(untagged="busybox:latest")]
    assert store.get(busybox).repo_tags == ()


def test_delete_by_id_stopped_container(store, busybox):
    users = users_of({busybox: [(CID, False)]})
    with pytest.raises(Conflict) as e:
        store.delete(busybox, force=False, users=users)
    assert e.value.message == (
        f"conflict: unable to delete {busybox[7:19]} (must be forced) - "
        "image is being used by stopped container 0123456789ab"
    )
    items = store.delete(busybox, force=True, users=users)
    assert items == [DeleteItem(untagged="busybox:latest"), DeleteItem(deleted=busybox)]
    # the container may still mount the layers: they are kept until pruned
    assert len(list((store.root / "layers").iterdir())) == 1
    assert store.prune_layers() != []
    assert list((store.root / "layers").iterdir()) == []


def test_delete_by_id_running_container(store, busybox):
    users = users_of({busybox: [(CID, True)]})
    for force in (False, True):
        with pytest.raises(Conflict) as e:
            store.delete(busybox[7:], force=force, users=users)
        assert e.value.message == (
            f"conflict: unable to delete {busybox[7:19]} (cannot be forced) - "
            "image is being used by running container 0123456789ab"
        )
    assert store.get(busybox).repo_tags == ("busybox:latest",)


def test_delete_by_id_with_several_tags(store, busybox):
    store.tag("busybox", "zzz", "1")
    with pytest.raises(Conflict) as e:
        store.delete(busybox[7:19], force=False, users=no_users)
    assert e.value.message == (
        f"conflict: unable to delete {busybox[7:19]} (must be forced) - "
        "image is referenced in multiple repositories"
    )
    items = store.delete(busybox[7:19], force=True, users=no_users)
    assert items[:3] == [
        DeleteItem(untagged="busybox:latest"),
        DeleteItem(untagged="zzz:1"),
        DeleteItem(deleted=busybox),
    ]


def test_delete_missing(store):
    with pytest.raises(NotFound, match="No such image: gone:latest"):
        store.delete("gone", force=False, users=no_users)


# ---------------------------------------------------------------------- safety


@pytest.mark.parametrize(
    "entries",
    [
        [("../evil", "file", {"data": b"x"})],
        [("a/../../evil", "file", {"data": b"x"})],
        [("/../evil", "file", {"data": b"x"})],
        [("link", "symlink", {"target": "/tmp"}), ("link/evil", "file", {"data": b"x"})],
        [("up", "symlink", {"target": "../../.."}), ("up/evil", "file", {"data": b"x"})],
        [("h", "hardlink", {"target": "../../etc/passwd"})],
    ],
)
def test_path_traversal_rejected(store, tmp_path, entries):
    layer = make_tar(entries)
    docker_archive(tmp_path / "t.tar", [layer], ["evil:1"])
    with pytest.raises(InvalidArgument):
        store.load_archive(tmp_path / "t.tar")
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil").exists()
    assert store.list() == []
    assert list((store.root / "layers").iterdir()) == []


def test_leftovers_cleaned_on_open(tmp_path, seed_archive):
    root = tmp_path / "s"
    store = ImageService(root)
    store.load_archive(seed_archive)
    busybox = store.get("busybox").id
    # an interrupted extract, an interrupted delete, a half-written json, a layer without metadata
    (root / "layers" / ".tmp-deadbeef" / "diff" / "bin").mkdir(parents=True)
    (root / "layers" / ".del-x-1").mkdir()
    (root / "images" / ".foo.json.123.tmp").write_bytes(b"{")
    (root / "layers" / ("f" * 64) / "diff").mkdir(parents=True)
    # an image config whose bytes do not hash to its name, and one whose layer is missing
    (root / "images" / ("e" * 64 + ".json")).write_bytes(b"{}")
    orphan = make_config([LAYER_B])
    (root / "images" / (_sha(orphan)[7:] + ".json")).write_bytes(orphan)

    again = ImageService(root)
    assert [i.id for i in again.list()] == [busybox]
    assert sorted(p.name for p in (root / "layers").iterdir()) == [again.get(busybox).diff_ids[0][7:]]
    assert not (root / "images" / ".foo.json.123.tmp").exists()
    assert again.read_file("busybox", "/etc/passwd").startswith(b"root:")


def test_digest_verified_on_reopen(tmp_path, seed_archive):
    root = tmp_path / "s"
    store = ImageService(root)
    store.load_archive(seed_archive)
    busybox = store.get("busybox").id
    path = root / "images" / f"{busybox[7:]}.json"
    path.write_bytes(path.read_bytes().replace(b'"sh"', b'"ls"'))
    assert ImageService(root).list() == []


# ---------------------------------------------------------------------- root-only: overlay format


@pytest.mark.kernel
@root_only
def test_whiteouts_and_opaque_dirs(store, tmp_path):
    lower = make_tar(
        [
            ("etc", "dir"),
            ("etc/passwd", "file", {"data": b"root:x:0:0::/:/bin/sh\n"}),
            ("etc/keep", "file", {"data": b"k"}),
            ("d", "dir"),
            ("d/a", "file", {"data": b"a"}),
            ("d/b", "file", {"data": b"b"}),
        ]
    )
    upper = make_tar(
        [
            ("etc", "dir"),
            ("etc/.wh.passwd", "file"),
            ("d", "dir"),
            ("d/.wh..wh..opq", "file"),
            ("d/c", "file", {"data": b"c"}),
        ]
    )
    image_id = docker_archive(tmp_path / "w.tar", [lower, upper], ["wh:1"])
    store.load_archive(tmp_path / "w.tar")
    top = store.layer_dirs(image_id)[1]
    st = os.lstat(top / "etc" / "passwd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0 and st.st_uid == 0 and st.st_gid == 0
    assert not (top / "etc" / ".wh.passwd").exists()
    assert os.getxattr(top / "d", "trusted.overlay.opaque") == b"y"
    assert not (top / "d" / ".wh..wh..opq").exists()
    assert store.read_file(image_id, "/etc/passwd") is None
    assert store.read_file(image_id, "/etc/keep") == b"k"
    assert store.read_file(image_id, "/d/a") is None
    assert store.read_file(image_id, "/d/c") == b"c"


@pytest.mark.kernel
@root_only
def test_metadata_preserved(store, tmp_path):
    layer = make_tar(
        [
            ("usr", "dir", {"mode": 0o755, "mtime": 1_500_000_000}),
            ("usr/bin", "dir", {"mode": 0o750, "uid": 5, "gid": 6, "mtime": 1_500_000_001}),
            (
                "usr/bin/suid",
                "file",
                {"data": b"#!", "mode": 0o4755, "uid": 1000, "gid": 1001, "mtime": 1_400_000_000},
            ),
            ("usr/bin/again", "hardlink", {"target": "usr/bin/suid"}),
            ("abs", "symlink", {"target": "/usr/bin/suid", "uid": 7, "gid": 8, "mtime": 1_300_000_000}),
            ("fifo", "fifo", {"mode": 0o600}),
            ("null", "chr", {"dev": (1, 3), "mode": 0o666}),
            ("x", "file", {"data": b"x", "pax": {"SCHILY.xattr.user.note": "hi"}}),
        ]
    )
    image_id = docker_archive(tmp_path / "m.tar", [layer], ["meta:1"])
    store.load_archive(tmp_path / "m.tar")
    d = store.layer_dirs(image_id)[0]
    st = os.lstat(d / "usr/bin/suid")
    assert stat.S_IMODE(st.st_mode) == 0o4755 and (st.st_uid, st.st_gid) == (1000, 1001)
    assert st.st_mtime == 1_400_000_000
    assert os.lstat(d / "usr/bin/again").st_ino == st.st_ino
    bin_st = os.lstat(d / "usr/bin")
    assert stat.S_IMODE(bin_st.st_mode) == 0o750 and (bin_st.st_uid, bin_st.st_gid) == (5, 6)
    assert bin_st.st_mtime == 1_500_000_001
    assert os.lstat(d / "usr").st_mtime == 1_500_000_000
    ln = os.lstat(d / "abs")
    assert stat.S_ISLNK(ln.st_mode) and os.readlink(d / "abs") == "/usr/bin/suid"
    assert (ln.st_uid, ln.st_gid, ln.st_mtime) == (7, 8, 1_300_000_000)
    assert stat.S_ISFIFO(os.lstat(d / "fifo").st_mode)
    nst = os.lstat(d / "null")
    assert stat.S_ISCHR(nst.st_mode) and os.major(nst.st_rdev) == 1 and os.minor(nst.st_rdev) == 3
    try:
        assert os.getxattr(d / "x", "user.note") == b"hi"
    except OSError:
        pytest.skip("filesystem without user xattrs")
    assert store.read_file(image_id, "/abs") == b"#!"


def test_concurrent_loads_and_reads(store, seed_archive, tmp_path):
    import threading

    errors = []

    def load():
        try:
            assert store.load_archive(seed_archive) == ["Loaded image: busybox:latest"]
            store.get("busybox")
            store.list()
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=load) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.list()) == 1
    assert len([p for p in (store.root / "layers").iterdir()]) == 1


@pytest.mark.parametrize("data", [b"", b"garbage" * 100, b"\x1f\x8bxx", gzip.compress(LAYER_A)[:50]])
def test_import_garbage_rejected(store, tmp_path, data):
    (tmp_path / "x").write_bytes(data)
    with pytest.raises(InvalidArgument, match="invalid layer tar"):
        store.import_tarball(tmp_path / "x", repo=None, tag=None, changes=[], message="")
    assert list((store.root / "layers").iterdir()) == []


def test_delete_one_of_several_tags_while_in_use(store, busybox):
    store.tag("busybox", "second", "1")
    users = users_of({busybox: [(CID, True)]})
    assert store.delete("busybox", force=False, users=users) == [DeleteItem(untagged="busybox:latest")]
    with pytest.raises(Conflict, match="unable to remove repository reference"):
        store.delete("second:1", force=False, users=users)
