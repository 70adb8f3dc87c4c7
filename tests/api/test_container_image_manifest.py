"""Containers' `ImageManifestDescriptor` (1.48): the OCI descriptor of the image's platform manifest each was made
from, with its platform, in the container list and inspect (moby daemon/container/view.go, daemon/inspect.go);
images' `Descriptor` in `/system/df` from 1.48 (dockerd's df lists images as its image list does)."""

from __future__ import annotations

import json
from dataclasses import replace


from servin.core.store import ContainerStore
from servin.images import manifests as mf
from servin.images.manifests import ManifestSource
from servin.images.model import host_architecture

PLATFORM = {"architecture": host_architecture(), "os": "linux"}


async def get(env, path: str, **params: str) -> object:
    r = await env.client.get(path, params=params)
    assert r.status == 200, await r.text()
    return await r.json()


def own_descriptor(env, ref: str = "busybox") -> dict[str, object]:
    return dict(env.images.manifests.of(env.images.get(ref)).own().descriptor)


async def listed(env, v: str, cid: str) -> dict[str, object]:
    return next(c for c in await get(env, f"/v{v}/containers/json", all="1") if c["Id"] == cid)


async def test_list_and_inspect_show_it_from_1_48(env):
    cid = await env.create("c1")
    want = {**own_descriptor(env), "platform": PLATFORM}
    assert want["mediaType"] == mf.OCI_MANIFEST
    for v in ("1.24", "1.41", "1.47"):
        assert "ImageManifestDescriptor" not in await listed(env, v, cid)
        assert "ImageManifestDescriptor" not in await get(env, f"/v{v}/containers/{cid}/json")
    for v in ("1.48", "1.55"):
        summary = await listed(env, v, cid)
        assert summary["ImageManifestDescriptor"] == want
        assert list(summary)[3:6] == ["ImageID", "ImageManifestDescriptor", "Command"]  # Go's field order
        inspected = await get(env, f"/v{v}/containers/{cid}/json")
        assert inspected["ImageManifestDescriptor"] == want
        assert list(inspected)[-1] == "ImageManifestDescriptor"


async def test_the_index_entry_of_an_image_pulled_through_one(env):
    img = env.images.get("busybox")
    own = mf.made_manifest(env.images.config_raw(img.id), img.diff_ids, env.images.layers.tar_size)
    mine = {"mediaType": mf.OCI_MANIFEST, "digest": mf.digest_of(own), "size": len(own),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
            "platform": {"architecture": host_architecture(), "os": "linux", "variant": "v9"}}
    other = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 500,
             "platform": {"architecture": "s390x", "os": "linux"}}
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [other, mine]}).encode()
    env.images.manifests.record(img.id, ManifestSource(top=index, top_media_type=mf.OCI_INDEX, manifest=own))
    cid = await env.create("pulled")
    assert (await listed(env, "1.55", cid))["ImageManifestDescriptor"] == mine  # the index's own entry, not the index
    assert list((await get(env, f"/v1.55/containers/{cid}/json"))["ImageManifestDescriptor"]) == [
        "mediaType", "digest", "size", "annotations", "platform"]


async def test_kept_across_a_restart_and_after_the_image_is_gone(env):
    src = await env.create("src")
    r = await env.client.post("/v1.55/commit", params={"container": src, "repo": "mine", "tag": "1"})
    assert r.status == 201, await r.text()
    cid = await env.create("c1", Image="mine:1")
    want = {**own_descriptor(env, "mine:1"), "platform": PLATFORM}
    assert want != {**own_descriptor(env), "platform": PLATFORM}
    # the record holds it: a store opened anew (a daemon restart) reads it back
    await env.engine.amend(cid, lambda c: c)
    assert ContainerStore(env.tmp / "containers").get(cid).image_manifest == want

    r = await env.client.post("/v1.55/images/mine:1/tag", params={"repo": "mine", "tag": "2"})
    assert r.status == 201, await r.text()
    r = await env.client.delete("/v1.55/images/mine:1")
    assert r.status == 200, await r.text()
    assert (await listed(env, "1.55", cid))["ImageManifestDescriptor"] == want  # retagged
    r = await env.client.delete("/v1.55/images/mine:2", params={"force": "1"})
    assert r.status == 200 and {"Deleted": (await get(env, f"/v1.55/containers/{cid}/json"))["Image"]} in await r.json()
    assert not env.images.exists("mine:2")
    assert (await listed(env, "1.55", cid))["ImageManifestDescriptor"] == want  # removed
    assert (await get(env, f"/v1.55/containers/{cid}/json"))["ImageManifestDescriptor"] == want


async def test_a_container_recorded_before_gets_its_image_s_while_the_image_is_there(env):
    old = await env.create("old")
    gone = await env.create("gone")
    await env.engine.amend(old, lambda c: replace(c, image_manifest=None))  # as a record of an older Servin
    await env.engine.amend(gone, lambda c: replace(c, image_manifest=None, image_id="sha256:" + "0" * 64))
    want = {**own_descriptor(env), "platform": PLATFORM}
    assert (await listed(env, "1.55", old))["ImageManifestDescriptor"] == want
    assert env.engine.store.get(old).image_manifest == want  # recorded now: it stays when the image goes
    assert "ImageManifestDescriptor" not in await listed(env, "1.55", gone)
    assert "ImageManifestDescriptor" not in await get(env, f"/v1.55/containers/{gone}/json")
    assert env.engine.store.get(gone).image_manifest is None
    await env.engine.amend(old, lambda c: replace(c, image_manifest=None))
    assert (await get(env, f"/v1.55/containers/{old}/json"))["ImageManifestDescriptor"] == want


async def test_system_df_images_have_their_descriptor_from_1_48(env):
    await env.create("c1")
    stored = dict(env.images.manifests.of(env.images.get("busybox")).descriptor)
    for v in ("1.41", "1.47"):
        df = await get(env, f"/v{v}/system/df")
        assert "Descriptor" not in df["Images"][0]
    for v in ("1.48", "1.51"):
        df = await get(env, f"/v{v}/system/df")
        assert df["Images"][0]["Descriptor"] == stored
        assert list(df["Images"][0])[4:7] == ["ParentId", "Descriptor", "RepoDigests"]
    df = await get(env, "/v1.55/system/df", verbose="1")
    assert df["ImageUsage"]["Items"][0]["Descriptor"] == stored
    # containers in df never carry their image's manifest (moby daemon/disk_usage.go)
    assert "ImageManifestDescriptor" not in df["ContainerUsage"]["Items"][0]
    for v in ("1.48", "1.51"):
        assert "ImageManifestDescriptor" not in (await get(env, f"/v{v}/system/df"))["Containers"][0]
