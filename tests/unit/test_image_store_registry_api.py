"""The store API pull/push use: layer ingest, add_image, config bytes, blob records, and layer_tar
giving back the exact original tar (tar-split) for every kind of tar."""

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
import threading

import pytest

from servin.errors import Conflict, InvalidArgument, NotFound, SystemError_
from servin.images import reference as refs
from servin.images.model import BlobRef
from servin.images.service import ImageService
from servin.images.tarsplit import SIDE_DIR, SPLIT_FILE, regenerate

pytestmark = pytest.mark.unit

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mknod, chown, trusted.* xattrs)")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _ti(name, kind="file", *, size=0, **kw) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.mtime = kw.get("mtime", 1_600_000_000)
    ti.mode = kw.get("mode", 0o755 if kind == "dir" else 0o644)
    ti.uid, ti.gid = kw.get("uid", 0), kw.get("gid", 0)
    ti.type = {
        "file": tarfile.REGTYPE,
        "dir": tarfile.DIRTYPE,
        "symlink": tarfile.SYMTYPE,
        "hardlink": tarfile.LNKTYPE,
        "chr": tarfile.CHRTYPE,
        "blk": tarfile.BLKTYPE,
        "fifo": tarfile.FIFOTYPE,
    }[kind]
    ti.size = size
    ti.linkname = kw.get("target", "")
    if "dev" in kw:
        ti.devmajor, ti.devminor = kw["dev"]
    if "pax" in kw:
        ti.pax_headers = kw["pax"]
    return ti


def build(entries, fmt=tarfile.PAX_FORMAT, trailer: bytes = b"") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for ti, data in entries:
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue() + trailer


@pytest.fixture
def store(tmp_path) -> ImageService:
    return ImageService(tmp_path / "images")


def roundtrip(store: ImageService, tar: bytes, *, compress=False) -> str:
    diff_id = store.ingest_layer(io.BytesIO(gzip.compress(tar) if compress else tar), _sha(tar))
    assert diff_id == _sha(tar)
    with store.layer_tar(diff_id) as f:
        out = f.read()
    assert out == tar, "layer_tar must give back the original bytes"
    return diff_id


def random_tree(rng: random.Random) -> list:
    entries = [(_ti("d", "dir"), None), (_ti("d/sub", "dir", mode=0o700, uid=1000, gid=1000), None)]
    for i in range(rng.randint(5, 25)):
        name = f"d/{'sub/' if rng.random() < 0.5 else ''}f{i}" + ("x" * rng.choice([0, 0, 120, 200]))
        data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, 10_000, 70_000]))
        entries.append((_ti(name, mode=rng.choice([0o644, 0o755, 0o4755, 0o600])), data))
    entries.append((_ti("d/link", "symlink", target="sub/../f0" + "y" * rng.choice([0, 150])), None))
    return entries


# ---------------------------------------------------------------------- tar-split round trips


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
@pytest.mark.parametrize("seed", range(4))
def test_random_tars_round_trip(store, fmt, seed):
    rng = random.Random(seed * 7 + fmt)
    entries = random_tree(rng)
    if fmt == tarfile.USTAR_FORMAT:  # no long names in ustar
        entries = [(ti, d) for ti, d in entries if len(ti.name) < 100 and len(ti.linkname) < 100]
    roundtrip(store, build(entries, fmt), compress=bool(seed % 2))


@root_only
def test_every_kind_of_entry_round_trips(store):
    big = b"\0" * (3 << 20) + b"end"  # sparse-ish: mostly zeros, bigger than every buffer
    tar = build(
        [
            (_ti("etc", "dir"), None),
            (_ti("etc/empty", size=0), b""),
            (_ti("etc/passwd"), b"root:x:0:0\n"),
            (_ti("etc/hard", "hardlink", target="etc/passwd"), None),
            (_ti("etc/sym", "symlink", target="/etc/passwd"), None),
            (_ti("dev", "dir"), None),
            (_ti("dev/null", "chr", dev=(1, 3), mode=0o666), None),
            (_ti("dev/sda", "blk", dev=(8, 0), mode=0o660), None),
            (_ti("dev/fifo", "fifo"), None),
            (_ti("long/" + "n" * 150 + "/file", uid=123456, gid=654321), b"deep"),
            (_ti("x", pax={"SCHILY.xattr.user.k": "v", "SCHILY.xattr.trusted.k2": "\x01\x02"}), b"xat"),
            (_ti("big"), big),
            (_ti("gone", "dir"), None),
            (_ti("gone/.wh.file"), b""),
            (_ti("opq", "dir"), None),
            (_ti("opq/.wh..wh..opq"), b""),
            (_ti("opq/kept"), b"k"),
            (_ti("utf8-é-ünï"), b"name"),
        ],
        trailer=b"\0" * 4096 + b"trailing junk",
    )
    diff_id = roundtrip(store, tar, compress=True)
    split = store.layers.path(diff_id) / SPLIT_FILE
    assert split.stat().st_size < 16_384, "payloads are not copied into the split file"


@root_only
def test_duplicate_entries_and_replaced_paths_round_trip(store):
    tar = build(
        [
            (_ti("a"), b"first a"),
            (_ti("b", "hardlink", target="a"), None),
            (_ti("a"), b"second a, longer"),  # duplicate: the first payload must survive
            (_ti("d", "dir"), None),
            (_ti("d/in"), b"inside d"),
            (_ti("d/in2"), b"inside d too"),
            (_ti("d"), b"d is a file now"),  # a file over a directory with payloads
            (_ti("w"), b"whited out"),
            (_ti(".wh.w"), b""),  # a whiteout for a file of the same layer
            (_ti("a"), b"third"),
        ]
    )
    diff_id = roundtrip(store, tar)
    layer = store.layers.path(diff_id)
    assert (layer / "diff" / "a").read_bytes() == b"third"
    assert (layer / "diff" / "b").read_bytes() == b"first a"
    assert sorted(os.listdir(layer / SIDE_DIR)) == ["0", "1", "2", "3", "5"]  # all but "d" and the last "a"
    # and after a reopen (the split and the moved payloads are on disk)
    store.add_image(config_for(tar), None)
    with ImageService(store.root).layer_tar(diff_id) as f:
        assert _sha(f.read()) == diff_id


def test_gnu_tar_cli_archives_round_trip(store, tmp_path):
    src = tmp_path / "src"
    (src / "dir" / ("l" * 120)).mkdir(parents=True)
    (src / "dir" / ("l" * 120) / "file").write_bytes(os.urandom(5000))
    with open(src / "sparse", "wb") as f:
        f.seek(5 << 20)
        f.write(b"tail")
    os.link(src / "sparse", src / "hard")
    os.symlink("dir", src / "sym")
    for fmt in ("gnu", "posix", "oldgnu"):
        out = subprocess.run(
            ["tar", "--sparse", f"--format={fmt}", "-C", str(src), "-cf", "-", "."],
            check=True, capture_output=True,
        ).stdout
        roundtrip(store, out)


def test_memory_bounded_on_a_big_layer(store):
    data = os.urandom(1 << 20) * 40  # 40 MiB in one file
    tar = build([(_ti("huge"), data)])
    diff_id = store.ingest_layer(io.BytesIO(tar), None)
    h = hashlib.sha256()
    with store.layer_tar(diff_id) as f:
        while chunk := f.read(1 << 16):
            assert len(chunk) <= 1 << 20
            h.update(chunk)
    assert "sha256:" + h.hexdigest() == diff_id
    assert (store.layers.path(diff_id) / SPLIT_FILE).stat().st_size < 4096


def test_layer_tar_detects_a_changed_file(store):
    tar = build([(_ti("f"), b"original")])
    diff_id = store.ingest_layer(io.BytesIO(tar), None)
    (store.layers.path(diff_id) / "diff" / "f").write_bytes(b"ORIGINAL")
    with pytest.raises(SystemError_, match="no longer matches its digest"):
        with store.layer_tar(diff_id) as f:
            f.read()


def test_layer_without_split_regenerated_or_refused(store, tmp_path):
    # A layer stored without a tar-split whose content a deterministic tar reproduces.
    src = store.ingest_layer(io.BytesIO(build([(_ti("a", "dir"), None), (_ti("a/f"), b"x")])), None)
    out = io.BytesIO()
    regenerate(store.layers.path(src) / "diff", out)
    canonical = out.getvalue()
    diff_id = store.ingest_layer(io.BytesIO(canonical), None)
    (store.layers.path(diff_id) / SPLIT_FILE).unlink()
    with store.layer_tar(diff_id) as f:
        assert f.read() == canonical
    # One it cannot reproduce (ustar, other header bytes): a clear error, no wrong bytes.
    other = build([(_ti("z"), b"zz")], tarfile.USTAR_FORMAT)
    odd = store.ingest_layer(io.BytesIO(other), None)
    (store.layers.path(odd) / SPLIT_FILE).unlink()
    with pytest.raises(SystemError_, match="cannot be reproduced"):
        store.layer_tar(odd)


def test_layer_tar_unknown(store):
    with pytest.raises(NotFound):
        store.layer_tar("sha256:" + "0" * 64)


def test_imported_layer_is_reproducible(store, tmp_path):
    tar = build([(_ti("etc", "dir"), None), (_ti("etc/f"), b"imported")], tarfile.GNU_FORMAT)
    path = tmp_path / "in.tar"
    path.write_bytes(tar)
    img = store.import_tarball(path, repo="imp", tag=None, changes=[], message="")
    with store.layer_tar(img.diff_ids[0]) as f:
        assert f.read() == tar


# ---------------------------------------------------------------------- ingest / add_image


def config_for(*tars: bytes, **extra) -> bytes:
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-02-03T04:05:06Z",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [_sha(t) for t in tars]},
        **extra,
    }
    return json.dumps(cfg).encode()


LAYER = build([(_ti("bin", "dir"), None), (_ti("bin/sh", mode=0o755), b"#!sh")])


def test_ingest_checks_the_digest_and_leaves_nothing(store):
    assert not store.has_layer(_sha(LAYER))
    with pytest.raises(InvalidArgument, match="does not match"):
        store.ingest_layer(io.BytesIO(gzip.compress(LAYER)), "sha256:" + "1" * 64)
    assert not store.has_layer(_sha(LAYER))
    assert [p.name for p in (store.root / "layers").iterdir()] == []
    with pytest.raises(InvalidArgument):
        store.ingest_layer(io.BytesIO(LAYER), "md5:abc")
    assert store.ingest_layer(io.BytesIO(gzip.compress(LAYER)), _sha(LAYER)) == _sha(LAYER)
    assert store.has_layer(_sha(LAYER))
    # present already: still verified
    with pytest.raises(InvalidArgument):
        store.ingest_layer(io.BytesIO(b"x" * 2048), _sha(LAYER))


def test_concurrent_ingest_of_one_layer(store):
    big = build([(_ti(f"f{i}"), os.urandom(50_000)) for i in range(40)])
    results, errors = [], []

    def run():
        try:
            results.append(store.ingest_layer(io.BytesIO(big), _sha(big)))
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and results == [_sha(big)] * 6
    assert [p.name for p in (store.root / "layers").iterdir()] == [_sha(big)[7:]]
    with store.layer_tar(_sha(big)) as f:
        assert f.read() == big


def test_add_image_tags_and_records_digest(store):
    store.ingest_layer(io.BytesIO(LAYER), _sha(LAYER))
    raw = config_for(LAYER)
    ref = refs.parse_normalized("busybox:latest")
    digest = "docker.io/library/busybox@sha256:" + "a" * 64
    img, old = store.add_image(raw, ref, digest)
    assert old is None
    assert img.id == _sha(raw)
    assert img.repo_tags == ("busybox:latest",)
    assert img.repo_digests == ("busybox@sha256:" + "a" * 64,)
    assert store.get("busybox@sha256:" + "a" * 64).id == img.id
    assert store.config_raw("busybox") == raw
    assert store.get("busybox").last_tag_time is None  # a pull does not set LastTagTime
    # the same again: up to date
    assert store.add_image(raw, ref, digest)[1] is None
    # a newer image under the same tag
    raw2 = config_for(LAYER, created="2025-01-01T00:00:00Z")
    img2, old2 = store.add_image(raw2, ref, None)
    assert old2 == img.id
    assert store.get("busybox").id == img2.id
    assert store.get(img.id).repo_tags == ()
    assert store.get(img.id).repo_digests == ("busybox@sha256:" + "a" * 64,)
    # pull by digest: no tag
    raw3 = config_for(LAYER, created="2026-01-01T00:00:00Z")
    img3, old3 = store.add_image(raw3, None, "localhost:5000/x/y@sha256:" + "b" * 64)
    assert old3 is None and img3.repo_digests == ("localhost:5000/x/y@sha256:" + "b" * 64,)
    # survives a reopen
    again = ImageService(store.root)
    assert again.get("localhost:5000/x/y@sha256:" + "b" * 64).id == img3.id
    assert again.get("busybox").id == img2.id


def test_add_image_refuses_missing_layer_and_bad_input(store):
    with pytest.raises(Conflict):
        store.add_image(config_for(LAYER), None)
    with pytest.raises(InvalidArgument):
        store.add_image(b"not json", None)
    store.ingest_layer(io.BytesIO(LAYER), None)
    with pytest.raises(InvalidArgument):
        store.add_image(config_for(LAYER), None, "busybox:latest")
    assert store.list() == []


# ---------------------------------------------------------------------- blob records


def test_blob_records_persist_and_go_with_the_layer(store):
    diff_id = store.ingest_layer(io.BytesIO(LAYER), None)
    img, _ = store.add_image(config_for(LAYER), refs.parse_normalized("x:1"))
    d1, d2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    gz = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    store.record_blob(diff_id, "busybox", d1, gz, 10)
    store.record_blob(diff_id, "localhost:5000/a/b", d2, gz, 11)
    store.record_blob(diff_id, "docker.io/library/busybox", d1, gz, 10)  # same blob again: moves last
    want = [
        BlobRef(repository="localhost:5000/a/b", digest=d2, media_type=gz, size=11),
        BlobRef(repository="docker.io/library/busybox", digest=d1, media_type=gz, size=10),
    ]
    assert store.blobs_for(diff_id) == want
    assert ImageService(store.root).blobs_for(diff_id) == want
    assert store.blobs_for("sha256:" + "9" * 64) == []
    store.delete(img.id, force=False, users=lambda _i: [])
    assert store.blobs_for(diff_id) == []
    assert list((store.root / "distribution").iterdir()) == []
    assert ImageService(store.root).blobs_for(diff_id) == []
