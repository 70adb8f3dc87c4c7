"""Images' `Descriptor` (from 1.48) and `Manifests` (on request: list from 1.47, inspect from 1.48), as
dockerd 29's containerd image store gives them (moby daemon/server/router/image/image_routes.go)."""

from __future__ import annotations

import json


from servin.images import manifests as mf
from servin.images.manifests import ManifestSource
from servin.images.model import host_architecture


async def get(env, path: str, **params: str) -> object:
    r = await env.client.get(path, params=params)
    assert r.status == 200, await r.text()
    return await r.json()


async def test_the_descriptor_of_each_image_from_1_48(env):
    stored = env.images.manifests.of(env.images.get("busybox")).descriptor
    for v in ("1.41", "1.47"):
        [img] = await get(env, f"/v{v}/images/json")
        assert "Descriptor" not in img and "Descriptor" not in await get(env, f"/v{v}/images/busybox/json")
    [img] = await get(env, "/v1.48/images/json")
    assert img["Descriptor"] == stored == (await get(env, "/v1.55/images/busybox/json"))["Descriptor"]
    assert stored["mediaType"] == mf.OCI_MANIFEST and stored["digest"].startswith("sha256:")
    assert list(img)[:7] == ["Containers", "Created", "Id", "Labels", "ParentId", "Descriptor", "RepoDigests"]


async def test_manifests_on_request_from_their_versions(env):
    for v, listed in (("1.46", False), ("1.47", True), ("1.55", True)):
        [img] = await get(env, f"/v{v}/images/json", manifests="1")
        assert ("Manifests" in img) is listed, v
    [img] = await get(env, "/v1.55/images/json")
    assert "Manifests" not in img  # only when asked
    assert "Manifests" not in await get(env, "/v1.47/images/busybox/json", manifests="1")
    inspected = await get(env, "/v1.48/images/busybox/json", manifests="1")
    [listed] = (await get(env, "/v1.48/images/json", manifests="1"))[0]["Manifests"]
    assert inspected["Manifests"] == [listed]
    assert list(inspected)[-2:] == ["Descriptor", "Manifests"]


async def test_a_manifest_entry_as_dockerd_shapes_it(env):
    img = env.images.get("busybox")
    [entry] = (await get(env, "/v1.55/images/json", manifests="1"))[0]["Manifests"]
    raw = mf.made_manifest(env.images.config_raw(img.id), img.diff_ids, env.images.layers.tar_size)
    content = len(raw) + len(env.images.config_raw(img.id)) + sum(env.images.layers.tar_size(d) for d in img.diff_ids)
    assert entry == {
        "ID": mf.digest_of(raw),
        "Descriptor": {"mediaType": mf.OCI_MANIFEST, "digest": mf.digest_of(raw), "size": len(raw)},
        "Available": True,
        "Size": {"Content": content, "Total": content + img.size},
        "Kind": "image",
        "ImageData": {"Platform": {"architecture": host_architecture(), "os": "linux"},
                      "Size": {"Unpacked": img.size}, "Containers": None},
    }
    cid = await env.create("user")
    [entry] = (await get(env, "/v1.55/images/json", manifests="1"))[0]["Manifests"]
    assert entry["ImageData"]["Containers"] == [cid]
    [entry] = (await get(env, "/v1.55/images/busybox/json", manifests="1"))["Manifests"]
    assert entry["ImageData"]["Containers"] == [cid]


async def test_an_image_pulled_through_an_index(env):
    img = env.images.get("busybox")
    own = mf.made_manifest(env.images.config_raw(img.id), img.diff_ids, env.images.layers.tar_size)
    arm = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 500,
           "platform": {"architecture": "arm", "os": "linux", "variant": "v7"}}
    mine = {"mediaType": mf.OCI_MANIFEST, "digest": mf.digest_of(own), "size": len(own),
            "platform": {"architecture": host_architecture(), "os": "linux"}}
    attestation = {"mediaType": mf.OCI_MANIFEST, "digest": "sha256:" + "2" * 64, "size": 840,
                   "annotations": {mf.REFERENCE_DIGEST: mine["digest"], mf.REFERENCE_TYPE: mf.ATTESTATION},
                   "platform": {"architecture": "unknown", "os": "unknown"}}
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": [mine, arm, attestation]}).encode()
    env.images.manifests.record(img.id, ManifestSource(top=index, top_media_type=mf.OCI_INDEX, manifest=own,
                                                       repository="docker.io/library/busybox"))
    [summary] = await get(env, "/v1.55/images/json", manifests="1")
    assert summary["Descriptor"] == {"mediaType": mf.OCI_INDEX, "digest": mf.digest_of(index), "size": len(index)}
    first, second, third = summary["Manifests"]
    assert first["Available"] and first["Descriptor"] == mine
    assert second == {"ID": arm["digest"], "Descriptor": arm, "Available": False, "Size": {"Content": 0, "Total": 0},
                      "Kind": "image", "ImageData": {"Platform": arm["platform"], "Size": {"Unpacked": 0},
                                                     "Containers": None}}
    assert third == {"ID": attestation["digest"], "Descriptor": attestation, "Available": False,
                     "Size": {"Content": 0, "Total": 0}, "Kind": "attestation",
                     "AttestationData": {"For": mine["digest"]}}
    # with `platform` (1.49), inspect's target is the chosen platform's manifest, as dockerd's
    platform = json.dumps({"os": "linux", "architecture": host_architecture()})
    assert (await get(env, "/v1.49/images/busybox/json", platform=platform))["Descriptor"] == mine
    assert (await get(env, "/v1.49/images/busybox/json"))["Descriptor"] == summary["Descriptor"]
    # where it came from: Identity (inspect from 1.53; the list's with identity=1, from 1.54)
    pulled = {"Pull": [{"Repository": "docker.io/library/busybox"}]}
    assert "Identity" not in await get(env, "/v1.52/images/busybox/json")
    assert (await get(env, "/v1.53/images/busybox/json"))["Identity"] == pulled
    [summary] = await get(env, "/v1.54/images/json", manifests="1", identity="1")
    assert summary["Manifests"][0]["ImageData"]["Identity"] == pulled
    assert "Identity" not in summary["Manifests"][1]["ImageData"]
    [summary] = await get(env, "/v1.53/images/json", manifests="1", identity="1")  # identity read from 1.54
    assert "Identity" not in summary["Manifests"][0]["ImageData"]


async def test_conflicting_options(env):
    r = await env.client.get("/v1.54/images/json", params={"identity": "1"})
    assert r.status == 400
    assert (await r.json())["message"] == "conflicting options: identity requires manifests=1"
    assert (await env.client.get("/v1.53/images/json", params={"identity": "1"})).status == 200
    platform = json.dumps({"os": "linux", "architecture": host_architecture()})
    r = await env.client.get("/v1.49/images/busybox/json", params={"manifests": "1", "platform": platform})
    assert r.status == 400
    assert (await r.json())["message"] == "conflicting options: manifests and platform options cannot both be set"
    r = await env.client.get("/v1.48/images/busybox/json", params={"manifests": "1", "platform": platform})
    assert r.status == 200 and "Manifests" in await r.json()  # platform is read from 1.49 on
