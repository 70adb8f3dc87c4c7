"""The OCI side of an image (images/manifests.py): the manifests a registry or an OCI layout gave, kept;
a deterministic one made for every other image, stored, stable across restarts; what `Manifests` holds
for an image pulled through an index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from servin.errors import NotFound
from servin.images import manifests as mf
from servin.images.manifests import ManifestSource
from servin.images.model import host_architecture
from servin.images.service import ImageService
from servin.images.seed import write_busybox_archive
from tests.unit.test_image_store import _sha, docker_archive, make_config, make_tar, oci_archive, write_tar

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def seed_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("seed") / "busybox.tar"
    write_busybox_archive(out)
    return out


@pytest.fixture
def store(tmp_path: Path) -> ImageService:
    return ImageService(tmp_path / "images")


@pytest.fixture
def busybox(store: ImageService, seed_archive: Path) -> str:
    store.load_archive(seed_archive)
    return store.get("busybox").id

LAYER = make_tar([("etc/", "dir"), ("etc/hello", "file", {"data": b"hello\n"})])


def reopen(store: ImageService) -> ImageService:
    return ImageService(store.root)


def test_a_made_manifest_is_the_oci_manifest_of_the_stored_layers(store, busybox, tmp_path):
    img = store.get(busybox)
    oci = store.manifests.of(img)
    raw = mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    assert json.loads(raw) == {
        "schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
        "config": {"mediaType": mf.OCI_CONFIG, "digest": busybox, "size": len(store.config_raw(busybox))},
        "layers": [{"mediaType": mf.OCI_LAYER, "digest": d, "size": store.layers.tar_size(d)} for d in img.diff_ids]}
    assert raw == mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    # the seed archive (dockerd 25's hybrid format) carries the same manifest in its index.json
    assert oci.descriptor == {"mediaType": mf.OCI_MANIFEST, "digest": mf.digest_of(raw), "size": len(raw)}
    [own] = oci.manifests
    assert own.own and own.available and own.kind == "image"
    assert own.platform == {"architecture": host_architecture(), "os": "linux"}
    assert own.unpacked_size == img.size
    assert own.content_size == len(raw) + len(store.config_raw(busybox)) + sum(
        store.layers.tar_size(d) for d in img.diff_ids)


def test_images_without_manifests_get_one_that_stays_across_restarts(store, busybox, tmp_path):
    tar = tmp_path / "layer.tar"
    tar.write_bytes(LAYER)
    imported = store.import_tarball(tar, repo="imported", tag=None, changes=[], message="")
    first = store.manifests.of(imported).descriptor
    assert first["mediaType"] == mf.OCI_MANIFEST
    assert (store.root / "targets" / imported.id[7:]).exists()
    assert (store.root / "manifests" / first["digest"][7:]).exists()
    again = reopen(store)
    assert again.manifests.of(again.get("imported")).descriptor == first
    # a docker-archive of it loads with the same descriptor (save and load agree)
    path = tmp_path / "docker.tar"
    docker_archive(path, [LAYER], ["other:1"], config=store.config_raw(imported.id))
    fresh = ImageService(tmp_path / "fresh")
    fresh.load_archive(path)
    assert fresh.manifests.of(fresh.get("other:1")).descriptor == first


def test_images_stored_before_are_given_theirs_when_first_asked(store, busybox):
    img = store.get(busybox)
    want = store.manifests.of(img).descriptor
    for d in ("targets", "manifests"):  # as a store written by a Servin without this module
        for f in (store.root / d).iterdir():
            f.unlink()
        (store.root / d).rmdir()
    old = reopen(store)
    assert not (old.root / "targets" / busybox[7:]).exists()
    assert old.manifests.of(old.get(busybox)).descriptor == want
    assert (old.root / "targets" / busybox[7:]).exists()


def test_a_target_whose_blob_is_lost_or_corrupt_is_made_again(store, busybox):
    want = store.manifests.of(store.get(busybox)).descriptor
    blob = store.root / "manifests" / want["digest"][7:]
    blob.write_bytes(b"{}")
    again = reopen(store)
    assert again.manifests.of(again.get(busybox)).descriptor == want
    assert mf.digest_of(blob.read_bytes()) == want["digest"]


def test_opening_sweeps_temp_files_orphan_blobs_and_targets_of_gone_images(store, busybox):
    store.manifests.of(store.get(busybox))
    (store.root / "manifests" / ".x.tmp").write_bytes(b"half")
    orphan = store.root / "manifests" / ("ab" * 32)
    orphan.write_bytes(b"{}")
    gone = store.root / "targets" / ("cd" * 32)
    gone.write_text(json.dumps({"target": {"digest": "sha256:" + "ab" * 32}, "manifest": "sha256:" + "ab" * 32}))
    reopen(store)
    assert not gone.exists() and not orphan.exists()
    assert not (store.root / "manifests" / ".x.tmp").exists()
    assert (store.root / "targets" / busybox[7:]).exists()


def test_an_oci_layout_keeps_its_manifest_and_index(store, tmp_path):
    path = tmp_path / "oci.tar"
    config_id = oci_archive(path, [LAYER], {"io.containerd.image.name": "docker.io/library/app:1"}, nested=True)
    store.load_archive(path)
    oci = store.manifests.of(store.get("app:1"))
    assert oci.descriptor["mediaType"] == mf.OCI_INDEX
    [own] = oci.manifests
    assert own.own and own.descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    assert store.get("app:1").id == config_id
    assert reopen(store).manifests.of(store.get("app:1")) == oci


def _index(own_raw: bytes) -> bytes:
    own = {"mediaType": mf.OCI_MANIFEST, "digest": mf.digest_of(own_raw), "size": len(own_raw),
           "platform": {"architecture": "amd64", "os": "linux"}}
    arm = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 500,
           "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    attestation = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "2" * 64, "size": 840,
                   "annotations": {mf.REFERENCE_TYPE: mf.ATTESTATION, mf.REFERENCE_DIGEST: own["digest"]},
                   "platform": {"architecture": "unknown", "os": "unknown"}}
    nested = {"mediaType": mf.OCI_INDEX, "digest": "sha256:" + "3" * 64, "size": 100}
    return json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                       "manifests": [arm, own, attestation, nested]}).encode()


def test_an_image_pulled_through_an_index_lists_every_manifest_of_it(store, busybox):
    img = store.get(busybox)
    own_raw = mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    index = _index(own_raw)
    store.manifests.record(busybox, ManifestSource(top=index, top_media_type=mf.OCI_INDEX, manifest=own_raw,
                                                   repository="docker.io/library/busybox"))
    oci = reopen(store).manifests.of(img)
    assert oci.descriptor == {"mediaType": mf.OCI_INDEX, "digest": _sha(index), "size": len(index)}
    assert oci.repositories == ("docker.io/library/busybox",)
    arm, own, attestation = oci.manifests  # the nested index is no manifest: dockerd skips it
    assert (arm.kind, arm.available, arm.content_size, arm.unpacked_size) == ("image", False, 0, 0)
    assert arm.platform == {"architecture": "arm", "os": "linux", "variant": "v7"}
    assert own.own and own.available and own.unpacked_size == img.size
    assert own.descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    assert (attestation.kind, attestation.attestation_for) == ("attestation", own.descriptor["digest"])


def test_an_image_made_anew_forgets_the_manifests_of_one_deleted_before(store, tmp_path):
    path = tmp_path / "oci.tar"
    oci_archive(path, [LAYER], {"io.containerd.image.name": "docker.io/library/app:1"})
    store.load_archive(path)
    pulled = store.manifests.of(store.get("app:1")).descriptor
    config = store.config_raw("app:1")
    store.delete("app:1", force=True, users=lambda _i: [])
    docker = tmp_path / "docker.tar"
    docker_archive(docker, [LAYER], ["app:2"], config=config)
    store.load_archive(docker)
    made = store.manifests.of(store.get("app:2")).descriptor
    assert made != pulled and made["size"] == len(mf.made_manifest(config, [_sha(LAYER)], store.layers.tar_size))


def test_go_field_order_of_descriptors_and_platforms():
    desc = mf.go_descriptor({"platform": {"variant": "v8", "os": "linux", "architecture": "arm64"},
                             "annotations": {"a": "b"}, "size": 3, "digest": "sha256:x", "mediaType": "m"})
    assert list(desc) == ["mediaType", "digest", "size", "annotations", "platform"]
    assert list(desc["platform"]) == ["architecture", "os", "variant"]
    assert mf.go_descriptor({}) == {"mediaType": "", "digest": "", "size": 0}


def test_make_config_helper_stays_loadable(tmp_path: Path):  # the helpers this file borrows
    path = tmp_path / "x.tar"
    config = make_config([LAYER])
    write_tar(path, {"manifest.json": json.dumps([{"Config": "c.json", "Layers": ["l.tar"]}]).encode(),
                     "c.json": config, "l.tar": LAYER})
    fresh = ImageService(tmp_path / "s")
    [line] = fresh.load_archive(path)
    assert line == f"Loaded image ID: {_sha(config)}"
    assert fresh.manifests.of(fresh.get(_sha(config))).manifests[0].available


def test_recording_over_a_corrupt_blob_writes_it_again(store, busybox):
    img = store.get(busybox)
    own = mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    index = _index(own)
    (store.root / "manifests" / _sha(index)[7:]).write_bytes(b"garbage")
    store.manifests.record(busybox, ManifestSource(top=index, top_media_type=mf.OCI_INDEX, manifest=own))
    assert reopen(store).manifests.of(img).descriptor["digest"] == _sha(index)


def test_an_image_removed_meanwhile_is_not_found(store, busybox, tmp_path):
    tar = tmp_path / "layer.tar"
    tar.write_bytes(LAYER)
    img = store.import_tarball(tar, repo=None, tag=None, changes=[], message="")
    store.delete(img.id, force=True, users=lambda _i: [])
    with pytest.raises(NotFound):
        store.manifests.of(img)  # listed just before its rmi: no manifest is made for what is gone
    assert not (store.root / "targets" / img.id[7:]).exists()


def test_the_repositories_of_every_pull_are_kept(store, busybox):
    img = store.get(busybox)
    own = mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    for repository in ("docker.io/library/busybox", "registry.example/mirror/busybox", "docker.io/library/busybox"):
        store.manifests.record(busybox, ManifestSource(top=own, top_media_type=mf.OCI_MANIFEST, manifest=own,
                                                       repository=repository))
    assert reopen(store).manifests.of(img).repositories == ("docker.io/library/busybox",
                                                            "registry.example/mirror/busybox")


def test_an_image_pulled_again_after_its_removal_forgets_where_it_came_from(store, busybox):
    img = store.get(busybox)
    own = mf.made_manifest(store.config_raw(busybox), img.diff_ids, store.layers.tar_size)
    store.manifests.record(busybox, ManifestSource(top=own, top_media_type=mf.OCI_MANIFEST, manifest=own,
                                                   repository="docker.io/library/busybox"))
    config = store.config_raw(busybox)
    with store.pinned(img.diff_ids):
        store.delete(busybox, force=True, users=lambda _i: [])
        store.add_image(config, None, source=ManifestSource(top=own, top_media_type=mf.OCI_MANIFEST, manifest=own,
                                                            repository="registry.example/other"))
    assert store.manifests.of(store.get(busybox)).repositories == ("registry.example/other",)


def test_a_store_that_cannot_be_written_still_answers(store, busybox, monkeypatch):
    want = store.manifests.of(store.get(busybox)).descriptor
    for d in ("targets", "manifests"):
        for f in (store.root / d).iterdir():
            f.unlink()
    again = reopen(store)

    def full(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(mf, "atomic_write", full)
    assert again.manifests.of(again.get(busybox)).descriptor == want  # from memory, no traceback
    assert not (again.root / "targets" / busybox[7:]).exists()


def test_an_infinite_size_in_a_manifest_is_not_a_traceback():
    raw = b'{"config": {"size": 1e999}, "layers": [{"size": 5}]}'
    assert mf._content_size(raw) == len(raw)
